"""Option renames and removals: mkRenamedOptionModule, mkAliasOptionModule, mkRemovedOptionModule."""

from __future__ import annotations

from typing import Any

from .errors import EvalError, show_option
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


def _do_rename(from_: list[str], to: list[str], visible: bool, with_priority: bool) -> Any:
    pos = _caller_loc(3)

    def module(options: Any, config: Any, **_: Any) -> dict:
        def forwarded() -> Any:
            opt = _get(options, from_)
            defs = [d.value for d in opt.definitions]
            if with_priority:
                defs = [Override(opt.highest_prio, v) for v in defs]
            return Merge(defs)

        decl = OptionDecl(type=_AliasType(), visible=visible, pos=pos,
                          description=f"Alias of `{show_option(to)}'.",
                          apply=lambda _x: _get(config, to))
        return {
            "options": _nest(from_, decl),
            "config": _nest(to, If(lazy(lambda: _get(options, from_).is_defined), lazy(forwarded))),
        }

    return module


def mkRenamedOptionModule(from_: list[str], to: list[str]) -> Any:
    """`from_` was renamed to `to`: definitions of the old name keep their priority and move over."""
    return _do_rename(list(from_), list(to), visible=False, with_priority=True)


def mkAliasOptionModule(from_: list[str], to: list[str]) -> Any:
    """`from_` is another name for `to`."""
    return _do_rename(list(from_), list(to), visible=True, with_priority=False)


def mkRemovedOptionModule(option: list[str], instructions: str) -> Any:
    """`option` was removed; reading it fails with `instructions`."""
    path = list(option)
    pos = _caller_loc(2)

    def fail(_x: Any) -> Any:
        raise EvalError(f"The option `{show_option(path)}' can no longer be used since it's been removed. "
                        f"{instructions}", tuple(path))

    return {"options": _nest(path, OptionDecl(type=_AliasType(), visible=False, apply=fail, pos=pos))}
