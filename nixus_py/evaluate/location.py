"""Where a definition or declaration came from: a file and, when known, a line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Loc:
    """A source location shown as `file:line` (or just `file` when the line is unknown)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        shown = _display(self.file)
        return f"{shown}:{self.line}" if self.line else shown

    def at(self, line: int | Loc | None) -> Loc:
        """The same file at a more precise line (or a full location from Nix), if one is known."""
        if isinstance(line, Loc):
            return line
        return self if not line or line == self.line else Loc(self.file, line)


def _display(path: str) -> str:
    """Paths under the working directory are shown relative to it, as users typed them."""
    if not path.startswith("/"):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("../..") else rel


class LocatedDict(dict):
    """A dict literal from a fleet `.py` file that remembers its line and the line of each key."""

    __slots__ = ("line", "lines")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line: int | None = None
        self.lines: dict[Any, int | Loc] = {}


def line_of(container: Any, key: Any = None) -> int | Loc | None:
    """The source line of `container[key]` (or of the container itself) when it is a LocatedDict."""
    if isinstance(container, LocatedDict):
        if key is not None:
            return container.lines.get(key, container.line)
        return container.line
    return None


def relocate(template: Any, new: dict) -> dict:
    """`new` with the line information of `template` (used when properties are pushed into a dict)."""
    if isinstance(template, LocatedDict):
        out = LocatedDict(new)
        out.line, out.lines = template.line, template.lines
        return out
    return new
