"""Freeform modules: definitions no option declares are merged with `_module.freeformType`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .lazyattrs import LazyAttrs
from .properties import Definition
from .optiontypes import OptionType


def with_freeform(prefix: tuple, freeform: OptionType, unmatched: list[tuple[tuple, Definition]],
                  declared: Mapping) -> Mapping:
    """`recursiveUpdate freeformConfig declaredConfig`, as nixpkgs does."""
    defs = []
    for path, d in unmatched:
        value: Any = d.value
        for name in reversed(path):
            value = {name: value}
        defs.append(Definition(d.file, value))
    free = freeform.merge(prefix, defs)  # as nixpkgs does: its merge alone, no check of the whole
    return _update(free, declared)


def _update(base: Mapping, top: Mapping) -> Mapping:
    names = list(base) + [n for n in top if n not in base]

    def get(name: str) -> Any:
        if name in top:
            t = top[name]
            if name in base and isinstance(t, Mapping) and isinstance(base[name], Mapping):
                return _update(base[name], t)
            return t
        return base[name]

    return LazyAttrs(names, get)
