"""The module system: typed options, priorities, conditionals and lazy evaluation, as in nixpkgs."""

from .errors import EvalCycle, EvalError, NixusError, SourceError
from .lib import lib, types
from .modules import Evaluation, FileModule, ModuleRef, Option, eval_modules
from .options import mkEnableOption, mkOption
from .properties import (lazy, mkAfter, mkBefore, mkDefault, mkForce, mkIf, mkMerge, mkOptionDefault,
                         mkOrder, mkOverride)
from .renames import mkAliasOptionModule, mkRemovedOptionModule, mkRenamedOptionModule

__all__ = [
    "EvalCycle", "EvalError", "Evaluation", "FileModule", "ModuleRef", "NixusError", "Option", "SourceError",
    "eval_modules", "lazy", "lib", "mkAfter", "mkAliasOptionModule", "mkBefore", "mkDefault",
    "mkEnableOption", "mkForce", "mkIf", "mkMerge", "mkOptionDefault", "mkOption", "mkOrder", "mkOverride",
    "mkRemovedOptionModule", "mkRenamedOptionModule", "types",
]
