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

    @property
    def module(self) -> Loc:
        """Just the file: messages about a whole module name it as nixpkgs does (by its `_file`)."""
        return self if self.line is None else Loc(self.file)


_base: list[str] = []  # the fleet's directory, once a fleet is loaded
_shown: dict[tuple[str, str], str] = {}  # (base, path): how the path is shown (output names many files)


def set_display_base(directory: str) -> None:
    """Show paths relative to `directory` (the fleet's), so messages and rendered output say
    `fleet.py:12` wherever nixus runs."""
    _base[:] = [directory]


def _display(path: str) -> str:
    """Paths below the fleet's directory (else the working directory) are shown relative to it."""
    if not path.startswith("/"):
        return path
    base = _base[0] if _base else os.getcwd()
    shown = _shown.get((base, path))
    if shown is None:
        shown = _shown[base, path] = _relative(path, base)
    return shown


def _relative(path: str, base: str) -> str:
    try:
        rel = os.path.relpath(path, base)
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


def located(d: Any, line: int | None, lines: dict) -> LocatedDict:
    """A LocatedDict with the entries of `d`, at `line`, with `lines` for its keys."""
    out = LocatedDict(d)
    out.line, out.lines = line, lines
    return out


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
        return located(new, template.line, template.lines)
    return new
