"""Where a fleet fact was written: the definitions of an option that set a path below it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..evaluate.location import Loc, line_of
from ..evaluate.properties import If, Merge, Order, Override, force


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
