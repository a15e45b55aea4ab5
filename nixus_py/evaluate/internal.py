"""The built-in `_module` options every evaluation has (args, check, freeformType)."""

from __future__ import annotations

from functools import cache

from . import optiontypes as types
from .declarations import option_type
from .options import OptionDecl
from .location import Loc

INTERNAL_FILE = Loc("<nixus internal module>")


@cache
def internal_module() -> dict:
    return {
        "_file": INTERNAL_FILE,
        "key": "nixus:internal",
        "options": {"_module": {
            "args": OptionDecl(type=types.AttrsOf(types.raw, lazy=True), internal=True, pos=INTERNAL_FILE,
                               description="Additional arguments passed to each module."),
            "check": OptionDecl(type=types.bool_, default=True, internal=True, pos=INTERNAL_FILE,
                                description="Whether to check whether all option definitions have "
                                            "matching declarations."),
            "freeformType": OptionDecl(type=types.NullOr(option_type), default=None, internal=True, pos=INTERNAL_FILE,
                                       description="If set, merge all definitions that don't have an "
                                                   "associated option together using this type."),
        }},
    }
