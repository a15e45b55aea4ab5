"""`lib` for Python modules: the module-system functions and `types`, named as in nixpkgs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from . import properties as p
from . import renames, submodule as sm
from .declarations import option_type
from .errors import EvalError
from . import optiontypes as t
from .options import mkEnableOption, mkOption


def _either(a: t.OptionType, b: t.OptionType) -> t.OptionType:
    return t.Either(a, b)


def non_empty_list_of(elem: t.OptionType) -> t.OptionType:
    """nixpkgs' nonEmptyListOf: a list type whose every definition must be non-empty."""
    list_type = t.ListOf(elem)
    return t.add_check(list_type, bool, description=f"non-empty {t.phrase(list_type, ('noun',))}")


class NotSupported(EvalError, AttributeError):
    """A part of nixpkgs' lib that nixus does not offer (still an AttributeError, for hasattr)."""


class Catalogue(SimpleNamespace):
    """`lib.types` (and `lib.types.ints`): a name nixus does not offer is a clear error, not an
    AttributeError from deep inside a fleet's module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        offered = ", ".join(sorted(vars(self)))
        raise NotSupported(f"lib.types.{name} is not supported by nixus (it offers: {offered})")


ints = Catalogue(
    between=t.ints_between,
    unsigned=t.add_check(t.int_, lambda x: x >= 0, "unsignedInt", "unsigned integer, meaning >=0",
                         "nonRestrictiveClause"),
    positive=t.add_check(t.int_, lambda x: x > 0, "positiveInt", "positive integer, meaning >0",
                         "nonRestrictiveClause"),
    u8=t.ints_between(0, 255, "unsignedInt8", "8 bit unsigned integer"),
    u16=t.ints_between(0, 65535, "unsignedInt16", "16 bit unsigned integer"),
    u32=t.ints_between(0, 4294967295, "unsignedInt32", "32 bit unsigned integer"),
    s8=t.ints_between(-128, 127, "signedInt8", "8 bit signed integer"),
    s16=t.ints_between(-32768, 32767, "signedInt16", "16 bit signed integer"),
    s32=t.ints_between(-2147483648, 2147483647, "signedInt32", "32 bit signed integer"),
)

types = Catalogue(
    unspecified=t.unspecified, bool=t.bool_, int=t.int_, float=t.float_, number=t.number, str=t.str_,
    nonEmptyStr=t.non_empty_str, singleLineStr=t.single_line_str, lines=t.lines, commas=t.commas,
    envVar=t.env_var, separatedString=t.separated_string, strMatching=t.str_matching, path=t.path,
    anything=t.anything, attrs=t.attrs, raw=t.raw, package=t.package, nixValue=t.nix_value,
    ints=ints, port=ints.u16,
    enum=t.Enum, nullOr=t.NullOr, listOf=t.ListOf, nonEmptyListOf=non_empty_list_of,
    attrsOf=lambda elem: t.AttrsOf(elem), lazyAttrsOf=lambda elem: t.AttrsOf(elem, lazy=True),
    either=_either, oneOf=t.one_of, uniq=lambda elem: t.Unique(elem),
    unique=lambda elem, message="": t.Unique(elem, message), coercedTo=t.CoercedTo, addCheck=t.add_check,
    submodule=sm.submodule, submoduleWith=sm.submodule_with, deferredModule=sm.DeferredModuleType(),
    deferredModuleWith=lambda staticModules=(): sm.DeferredModuleType(list(staticModules)), optionType=option_type,
)

lib = SimpleNamespace(
    mkOption=mkOption, mkEnableOption=mkEnableOption, types=types,
    mkIf=p.mkIf, mkMerge=p.mkMerge, mkOverride=p.mkOverride, mkForce=p.mkForce, mkDefault=p.mkDefault,
    mkOptionDefault=p.mkOptionDefault, mkVMOverride=p.mkVMOverride, mkImageMediaOverride=p.mkImageMediaOverride,
    mkOrder=p.mkOrder, mkBefore=p.mkBefore, mkAfter=p.mkAfter, mkDefinition=p.mkDefinition, lazy=p.lazy,
    mkRenamedOptionModule=renames.mkRenamedOptionModule, mkAliasOptionModule=renames.mkAliasOptionModule,
    mkRemovedOptionModule=renames.mkRemovedOptionModule, doRename=renames.doRename,
)
