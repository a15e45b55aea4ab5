"""Attribute sets whose values are computed on first access, as in Nix."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class AttrAccess:
    """Dot access for attribute sets (`config.nodes.web1.host`); `[...]` works for any name."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]  # type: ignore[index]
        except KeyError:
            raise AttributeError(f"attribute '{name}' missing") from None


class LazyAttrs(AttrAccess, Mapping):
    """A Mapping with known names and values computed by `get(name)` once, on demand."""

    __slots__ = ("_names", "_get", "_cache")

    def __init__(self, names: list[str], get: Callable[[str], Any]):
        self._names = dict.fromkeys(names)
        self._get = get
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            if name not in self._names:
                raise
        value = self._cache[name] = self._get(name)
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LazyAttrs({self._names!r})"


def deep_force(value: Any) -> Any:
    """A plain, fully evaluated copy (dicts, lists, scalars) of a lazy value tree."""
    from .properties import force
    value = force(value)
    if isinstance(value, Mapping):
        return {k: deep_force(value[k]) for k in value}
    if isinstance(value, list):
        return [deep_force(v) for v in value]
    return value
