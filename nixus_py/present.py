"""Showing evaluated values to users: plain JSON data or Nix syntax."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .evaluate.location import LocatedDict
from .evaluate.properties import Lazy, Property, force
from .evaluate.submodule import DeferredModule
from .nixlang import Annotated, NixValue, show_nix


_PLAIN = frozenset({str, int, bool, float, type(None)})
_DICTS = frozenset({dict, LocatedDict})


def to_data(value: Any) -> Any:
    """A fully evaluated, JSON-serialisable copy (module internals like `_module` left out)."""
    if isinstance(value, Lazy):
        value = force(value)
    if type(value) in _PLAIN:  # most values: one check rather than the chain below
        return value
    if type(value) in _DICTS:
        return {k: to_data(v) for k, v in value.items() if k != "_module"}
    if type(value) is list:
        return [to_data(v) for v in value]
    if isinstance(value, Annotated):
        return to_data(value.value)
    if isinstance(value, Property):  # as Nix shows mkIf/mkMerge/mkOverride/mkOrder values
        return {"_type": type(value).__name__.lower(),
                **{f: to_data(getattr(value, f)) for f in value.__dataclass_fields__}}
    if isinstance(value, NixValue):
        return {"__nix": show_nix(value)}
    if isinstance(value, DeferredModule):
        return {"__deferredModule": [{"file": str(d.file), "value": to_data(d.value)} for d in value.definitions]}
    if isinstance(value, Mapping):
        return {k: to_data(value[k]) for k in value if k != "_module"}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value):
        return "<function>"
    return str(value)


def get_path(root: Any, path: list[str]) -> Any:
    """`root.a.b` for the attribute path ["a", "b"] (KeyError naming the missing part)."""
    value = root
    for i, name in enumerate(path):
        value = force(value)
        try:
            if isinstance(value, NixValue):  # a set kept in Nix (a derivation, say)
                value = value.attribute(name)
                continue
        except KeyError:
            pass
        if not isinstance(value, Mapping) or name not in value:
            raise KeyError(".".join(path[: i + 1]))
        value = value[name]
    return value


def parse_attr_path(text: str) -> list[str]:
    """Split `nodes."web-1".host` into ["nodes", "web-1", "host"]."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and quoted and i + 1 < len(text):
            i += 1
            cur += text[i]
        elif c == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur or parts:
        parts.append(cur)
    return parts
