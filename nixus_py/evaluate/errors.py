"""The one exception family of evaluation: every error names the option and where it was defined."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..nixlang import attr_path, show_value


class NixusError(Exception):
    """An error meant for the user: the CLI prints its message (no traceback) and exits 1."""


class EvalError(NixusError):
    """A module-system error, carrying the option path and the definitions that took part."""

    def __init__(self, message: str, option: Sequence[str] | None = None, files: Iterable[str] = ()):
        super().__init__(message)
        self.option = tuple(option) if option is not None else None
        self.files = list(files)


class EvalCycle(EvalError):
    """An option needs its own value: the message lists the cycle of option paths."""


class SourceError(EvalError):
    """A fleet file could not be read or parsed (syntax error, missing file, Nix error)."""


def show_option(loc: Sequence[str]) -> str:
    """`a.b."c d"` as nixpkgs' showOption prints it."""
    return attr_path(tuple(loc))


def type_name(v: Any) -> str:
    """The Nix name of a value's type, for messages (`set`, `list`, `lambda`, ...)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if v is None:
        return "null"
    if isinstance(v, Mapping):
        return "set"
    if callable(v):
        return "lambda"
    return type(v).__name__


def show_defs(defs: Iterable[Any]) -> str:
    """The `Definition values:` list of nixpkgs messages, one `- In `file': value` per definition."""
    out = []
    for d in defs:
        text = show_value(d.value)
        sep = ":\n    " if "\n" in text else ": "
        out.append(f"\n- In `{d.file}'{sep}{text}")
    return "".join(out)


def show_files(files: Iterable[Any]) -> str:
    """`a' and `b' as nixpkgs' showFiles prints them."""
    return " and ".join(f"`{f}'" for f in files)


PRIORITY_SUGGESTION = (
    "Use `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions."
)
