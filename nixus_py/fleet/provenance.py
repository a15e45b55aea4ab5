"""Where a fleet fact was written, for the errors and comments of cross-host modules: the
definitions of an option that set a path below it, and a per-evaluation cache for a module's
fleet-wide view."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..evaluate.errors import EvalError, show_option
from ..evaluate.location import Loc, line_of
from ..evaluate.properties import If, Merge, Order, Override, force

T = TypeVar("T")


def defined_at(option: Any, path: Sequence[str]) -> list[Loc]:
    """The `file:line`s of the definitions of `option` that set `path` below it."""
    found: list[Loc] = []
    for d in option.raw_defs:
        found.extend(_find(d.value, list(path), d.file))
    return found


def _find(value: Any, path: list[str], loc: Loc) -> list[Loc]:
    value = force(value)
    if isinstance(value, (If, Override, Order)):
        return _find(value.content, path, loc)
    if isinstance(value, Merge):
        return [x for c in value.contents for x in _find(c, path, loc)]
    if not path:
        return [loc]
    if not isinstance(value, Mapping) or path[0] not in value:
        return []
    return _find(value[path[0]], path[1:], loc.at(line_of(value, path[0])))


class Fact:
    """A place in an option's value (e.g. `ssh.access` + `laptop.keys.alice`): why-notes and
    errors that name it and the fleet lines that wrote it."""

    def __init__(self, option: Any, option_path: tuple[str, ...]):
        self.option, self.option_path = option, option_path

    def where(self, path: tuple) -> list[Loc]:
        """Where `path` (or, failing that, its first step) was defined."""
        return defined_at(self.option, path) or (defined_at(self.option, path[:1]) if path else [])

    def why(self, path: tuple) -> str:
        """`ssh.access.a.keys.k.hasAccessTo.b.root (fleet.py:14)`."""
        where = ", ".join(str(x) for x in defined_at(self.option, path))
        name = show_option(self.option_path + tuple(path))
        return f"{name} ({where})" if where else name

    def error(self, path: tuple, message: str) -> EvalError:
        """`<option path>' <message>; defined at <file:line>`."""
        full = self.option_path + tuple(path)
        where = self.where(tuple(path))
        shown = ", ".join(str(x) for x in where) or "unknown location"
        return EvalError(f"`{show_option(full)}' {message}; defined at {shown}", full, [str(x) for x in where])


def per_evaluation(build: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """A module's fleet-wide view (all grants, all networks), computed once per evaluation."""
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(fleet: Any, options: Any) -> T:
        ev = fleet.evaluation
        if ev not in cache:
            cache[ev] = build(fleet, options)
        return cache[ev]

    return get
