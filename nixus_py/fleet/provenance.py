"""Where a fleet fact was written, for the errors and comments of cross-host modules: the
definitions of an option that set a path below it, and a per-evaluation cache for a module's
fleet-wide view."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..evaluate.errors import EvalError, show_option
from ..evaluate.location import Loc, line_of
from ..evaluate.properties import If, Merge, Order, Override, force

T = TypeVar("T")
Reached = list[tuple[Any, Loc]]  # values found at a path below an option, with where each was set


def _plain(value: Any) -> list[Any]:
    """The plain values a definition stands for: properties stripped, `mkMerge` contents each."""
    value = force(value)
    if isinstance(value, (If, Override, Order)):
        return _plain(value.content)
    if isinstance(value, Merge):
        return [x for c in value.contents for x in _plain(c)]
    return [value]


def _step(found: Reached, key: str) -> Reached:
    """Where each found value sets `key`: its value there and the line that set it."""
    return [(v[key], loc.at(line_of(v, key))) for value, loc in found
            for v in _plain(value) if isinstance(v, Mapping) and key in v]


def _ends(found: Reached) -> list[Loc]:
    """One location per plain value reached (a `mkMerge` of two sets it twice)."""
    return [loc for value, loc in found for _ in _plain(value)]


class Fact:
    """A place in an option's value (e.g. `ssh.access` + `laptop.keys.alice`): why-notes and
    errors that name it and the fleet lines that wrote it."""

    def __init__(self, option: Any, option_path: tuple[str, ...]):
        self.option, self.option_path = option, option_path
        self._reached: dict[tuple, Reached] = {}

    def defined_at(self, path: tuple) -> list[Loc]:
        """The `file:line`s of the option's definitions that set `path` below it."""
        return _ends(_step(self._reach(path[:-1]), path[-1]) if path else self._reach(()))

    def _reach(self, prefix: tuple) -> Reached:
        """The values at `prefix`, kept: a module names thousands of paths below a few prefixes."""
        found = self._reached.get(prefix)
        if found is None:
            found = _step(self._reach(prefix[:-1]), prefix[-1]) if prefix else \
                [(d.value, d.file) for d in self.option.raw_defs]
            self._reached[prefix] = found
        return found

    def where(self, path: tuple) -> list[Loc]:
        """Where `path` (or, failing that, its first step) was defined."""
        return self.defined_at(path) or (self.defined_at(path[:1]) if path else [])

    def why(self, path: tuple) -> str:
        """`ssh.access.a.keys.k.hasAccessTo.b.root (fleet.py:14)`."""
        path = tuple(path)
        where = ", ".join(str(x) for x in self.defined_at(path))
        name = show_option(self.option_path + path)
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
