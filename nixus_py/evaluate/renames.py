"""Option renames and removals: mkRenamedOptionModule, mkAliasOptionModule, mkRemovedOptionModule."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from .errors import EvalError, show_option
from .location import Loc
from .options import OptionDecl, _caller_loc
from .properties import If, Merge, Override, lazy
from .optiontypes import OptionType


class _AliasType(OptionType):
    """The type of an alias option: its own value is never merged, only forwarded."""

    name = "alias"
    description = "alias"

    def merge(self, loc: tuple, defs: list) -> Any:
        return None


def _nest(path: list[str], value: Any) -> Any:
    for name in reversed(path):
        value = {name: value}
    return value


def _get(root: Any, path: list[str]) -> Any:
    for name in path:
        root = root[name]
    return root


def _do_rename(from_: list[str], to: list[str], visible: bool, use: Callable[[Any], Any], warn: bool = False,
               with_priority: bool = True, condition: Any = True) -> Any:
    """nixpkgs' doRename: `from_` forwards its definitions (with their priority, unless not
    `with_priority`) to `to` where `condition` holds; with `warn`, defining `from_` adds to the
    `warnings` option where there is one."""
    pos = _caller_loc(3)

    def module(options: Any, config: Any, **_: Any) -> dict:
        def forwarded() -> Any:
            opt = _get(options, from_)
            return Merge([Override(opt.highest_prio, d.value) if with_priority else d.value for d in opt.definitions])

        def warning() -> list[str]:
            files = " and ".join(f"`{Loc(f.file)}'" for f in _get(options, from_).files)
            return [f"The option `{show_option(from_)}' defined in {files} has been renamed to `{show_option(to)}'."]

        def warnings_option() -> Any:  # (which names it defines depends on the options alone)
            if "warnings" not in options:
                return {}
            return {"warnings": If(lazy(lambda: warn and _get(options, from_).is_defined), lazy(warning))}

        decl = OptionDecl(type=_AliasType(), visible=visible, pos=pos,
                          description=f"Alias of `{show_option(to)}'.",
                          apply=lambda _x: use(_get(config, to)))
        aliased = _nest(to, If(lazy(lambda: _get(options, from_).is_defined), lazy(forwarded)))
        return {
            "options": _nest(from_, decl),
            "config": If(condition, Merge([lazy(warnings_option), aliased])) if warn or condition is not True
            else aliased,
        }

    return module


def doRename(from_: list[str], to: list[str], visible: bool, warn: bool, use: Callable[[Any], Any],
             withPriority: bool = True, condition: Any = True) -> Any:
    """nixpkgs' lib.doRename, the general form of the renames below."""
    return _do_rename(list(from_), list(to), visible, use, warn, withPriority, condition)


def mkRenamedOptionModule(from_: list[str], to: list[str]) -> Any:
    """`from_` was renamed to `to`: its definitions move over; reading it warns."""
    def use(value: Any) -> Any:
        warnings.warn(f"Obsolete option `{show_option(from_)}' is used. It was renamed to `{show_option(to)}'.",
                      stacklevel=2)
        return value

    return _do_rename(list(from_), list(to), visible=False, use=use)


def mkAliasOptionModule(from_: list[str], to: list[str]) -> Any:
    """`from_` is another name for `to`."""
    return _do_rename(list(from_), list(to), visible=True, use=lambda value: value)


def mkRemovedOptionModule(option: list[str], instructions: str) -> Any:
    """`option` was removed; reading it fails with `instructions`."""
    path = list(option)
    pos = _caller_loc(2)

    def fail(_x: Any) -> Any:
        raise EvalError(f"The option `{show_option(path)}' can no longer be used since it's been removed. "
                        f"{instructions}", tuple(path))

    return {"options": _nest(path, OptionDecl(type=_AliasType(), visible=False, apply=fail, pos=pos))}
