"""Nix values that Python does not evaluate, and Nix literal syntax for Python values.

Every stage that shows or writes a value as Nix (error messages, rendered per-host modules)
goes through `to_nix`, so a Python string is always a Nix string, escaped for any content.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_'-]*$")
_IDENTIFIER_PATH = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_\'-]*(\.([a-zA-Z_][a-zA-Z0-9_\'-]*|"[^"\\$]*"))*$')
# A path literal as Nix's lexer reads one (no trailing slash, no empty segment: `a//b` is `a // b`).
_BARE_PATH = re.compile(r"(~|[a-zA-Z0-9._+-]*)(/[a-zA-Z0-9._+-]+)+")
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"})


class NixValue:
    """A value that only Nix can evaluate; Python keeps it by reference and never forces it."""

    __slots__ = ()

    def nix(self) -> str:
        """The Nix source text that denotes this value."""
        raise NotImplementedError

    def attribute(self, name: str) -> Any:
        """The attribute `name` of this value, if Nix has it as an attribute set (KeyError otherwise)."""
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class NixExpr(NixValue):
    """Raw Nix source, e.g. `nix.expr("pkgs.hello")`, rendered verbatim (parenthesised).

    Attribute access builds a longer expression, so a Python NixOS module can be written as
    `lambda pkgs, **_: {"environment": {"systemPackages": [pkgs.hello]}}`.
    """

    code: str

    def nix(self) -> str:
        return self.code if _IDENTIFIER_PATH.fullmatch(self.code) else f"({self.code})"

    def __getattr__(self, name: str) -> NixExpr:
        if name.startswith("__"):
            raise AttributeError(name)
        return NixExpr(f"{self.nix()}.{attr_name(name)}")

    def __getitem__(self, name: str) -> NixExpr:
        return NixExpr(f"{self.nix()}.{attr_name(name)}")

    # A module function's `pkgs` and `config` are Nix, which Python never evaluates: a string or a
    # branch made of one would be wrong in the rendered module, so each is an error saying so.
    def __str__(self) -> str:
        raise not_nix(f"`{self.code}' is Nix (a module function's argument), which Python cannot put into a "
                      f"string: write the whole string as Nix, e.g. nix.expr('\"${{{self.code}}}/bin\"')")

    def __format__(self, spec: str) -> str:
        return str(self)

    def __bool__(self) -> bool:
        raise not_nix(f"`{self.code}' is Nix (a module function's argument), which is not known when nixus "
                      f"writes the module: instead of `if`, use mkIf(nix.expr({self.code!r}), ...)")


@dataclass(frozen=True, slots=True)
class NixPath(NixValue):
    """A Nix path literal such as `./web1.nix`; relative paths resolve against the rendered file."""

    path: str

    def nix(self) -> str:
        p = self.path
        if _BARE_PATH.fullmatch(p):
            return p if p.startswith(("/", "./", "../", "~/")) else "./" + p
        return f"(/. + {quote_string(p)})" if p.startswith("/") else f"(./. + {quote_string('/' + p)})"


@dataclass(frozen=True, slots=True)
class Annotated:
    """A value with a note on why it is there; pretty output shows the note as a comment."""

    value: Any
    note: str


_NEEDS_ESCAPE = re.compile(r'[\\"$\n\r\t\x00]')


def not_nix(message: str) -> Exception:
    """The error for a value that has no Nix form (the user's error, shown with no traceback)."""
    from .evaluate.errors import EvalError  # late: evaluation errors show values through here
    return EvalError(message)


def quote_string(s: str) -> str:
    """A double-quoted Nix string literal meaning exactly `s` (escapes `\\`, `"`, `${`, control chars)."""
    if not _NEEDS_ESCAPE.search(s):  # most strings: nothing to escape
        return f'"{s}"'
    if "\x00" in s:
        raise not_nix(f"a Nix string cannot hold a NUL character: {s!r}")
    out = ['"']
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "$" and s.startswith("${", i):
            out.append("\\${")
            i += 2
            continue
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
        i += 1
    out.append('"')
    return "".join(out)


def _fits_indented(s: str) -> bool:
    """Whether a multi-line string reads back exactly from an indented (two single quotes) literal:
    Nix strips the common indentation and treats whitespace-only lines specially, so avoid those."""
    if "\n" not in s or "\r" in s or "\t" in s or "\x00" in s:  # (a NUL: quote_string says it is none)
        return False
    lines = s.split("\n")
    body = lines[:-1] if s.endswith("\n") else lines
    if any(line.strip(" ") == "" for line in body) or all(line.startswith(" ") for line in body):
        return False
    return not s.startswith(" ")


# Inside an indented string Nix's lexer reads `'''` as two quotes, `''$` as a dollar and `''\c` as
# the character c; two quotes before anything else close the string. So a run of quotes is written
# as pairs, each pair as `'''`, and an odd quote left over stays a plain `'` unless an escape or the
# closing quotes come next, which it would join (`'''${` is two quotes and a live `${`): `''\'`.
_INDENTED_SPECIAL = re.compile(r"('+)(\$\{|\Z)?|\$\{")


def _escape_indented(match: re.Match[str]) -> str:
    """The escaped form of a run of quotes (with the `${` or end that follows it) or of a `${`."""
    quotes, escape_next = match.group(1), match.group(2)
    if quotes is None:
        return "''${"
    out = "'''" * (len(quotes) // 2)
    if len(quotes) % 2:
        out += "'" if escape_next is None else "''\\'"
    return out + ("''${" if escape_next == "${" else "")


def _indented_string(s: str, pad: str, close_pad: str) -> str:
    """An indented string literal meaning exactly `s` (for strings that `_fits_indented`)."""
    q = "'" * 2
    lines = _INDENTED_SPECIAL.sub(_escape_indented, s).split("\n")
    if s.endswith("\n"):
        return q + "\n" + "".join(f"{pad}{line}\n" for line in lines[:-1]) + close_pad + q
    return q + "\n" + "\n".join(f"{pad}{line}" for line in lines) + q


@functools.lru_cache(maxsize=1 << 16)
def attr_name(name: str) -> str:
    """An attribute name, quoted only when Nix requires it (kept: a fleet names the same nodes
    and options in thousands of paths)."""
    if _IDENTIFIER.fullmatch(name) and name not in _KEYWORDS:
        return name
    return quote_string(name)


def attr_path(parts: tuple[str, ...] | list[str]) -> str:
    """An option path as written in messages: `a.b."c d"` (placeholders like `<name>` stay bare)."""
    return ".".join(map(_path_part, parts))


@functools.lru_cache(maxsize=1 << 16)
def _path_part(part: str) -> str:
    """One step of an option path as messages show it (kept, as attr_name's answers are)."""
    if not isinstance(part, str):  # a name that is no string (a fleet.py dict with an int key): as Python has it
        return repr(part)
    return part if part == "*" or (part.startswith("<") and part.endswith(">")) else attr_name(part)


def _float(f: float) -> str:
    f = float(f)  # its own value, not what a subclass's repr says
    if math.isnan(f) or math.isinf(f):
        raise not_nix(f"Nix has no literal for the float {f!r}")
    if f != 0 and abs(f) < 2.2250738585072014e-308:
        # Nix cannot parse subnormal literals; dividing by a power of two is exact.
        return f"({_float(f * 2.0**200)} / {_float(2.0**200)})"
    mantissa, e, exponent = repr(f).partition("e")
    if "." not in mantissa:  # Nix float literals need a dot: 1e+16 is written 1.0e+16
        mantissa += ".0"
    return mantissa + e + exponent


def to_nix(value: Any, indent: int | None = None, _level: int = 0) -> str:
    """Nix literal syntax for a Python value; `indent=None` gives one line, else pretty-printed."""
    return NixWriter(indent).text(value, _level)


class NixWriter:
    """Writes Python values as Nix; one writer can serve many values (every node of a fleet).

    What a module annotates (`Annotated`: a peer, a granted key, a known host) it often hands,
    as the same object, to many nodes; the writer formats each such value once per depth.
    Values are final once evaluated, so a value's text never changes while the writer lives.
    """

    __slots__ = ("indent", "_force", "_property", "_annotated")

    def __init__(self, indent: int | None = 2):
        from .evaluate.properties import Property, force  # late: properties render through here too
        self.indent, self._force, self._property = indent, force, Property
        self._annotated: dict[tuple[int, int], tuple[Any, str]] = {}  # (id, level): (value, text)

    def text(self, value: Any, level: int = 0) -> str:
        """`value` as Nix source, nested `level` deep (pretty-printed lines are indented to match)."""
        value = self._force(value)
        kind = type(value)  # the common plain types first: each is none of the kinds tested before it
        if kind is str:
            return self._string(value, level)
        if kind is dict:
            return self._attrs(value, level)
        if kind is list:
            return self._list(value, level)
        if kind is Annotated:
            return self._annotated_text(value.value, level)
        if isinstance(value, dict) and not isinstance(value, NixValue):  # e.g. a LocatedDict
            return self._attrs(value, level)
        if isinstance(value, Annotated):
            return self.text(value.value, level)
        if isinstance(value, self._property):
            return value.to_nix(self.indent, level)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            value = int(value)  # its own value, not what a subclass's str says
            if not -(2**63) <= value < 2**63:
                raise not_nix(f"{value} is out of the range of Nix integers (64 bits, signed)")
            if value == -(2**63):  # its absolute value is no Nix integer literal
                return f"({value + 1} - 1)"
            return str(value) if value >= 0 or _showing.get() else f"({value})"
        if isinstance(value, float):
            text = _float(value)
            return f"({text})" if text.startswith("-") and not _showing.get() else text
        if isinstance(value, str):
            return self._string(str.__str__(value), level)
        if isinstance(value, NixValue):
            return value.nix()
        if isinstance(value, Mapping):
            return self._attrs(value, level)
        if isinstance(value, (list, tuple)):
            return self._list(value, level)
        if callable(value):
            if showing():
                return "<function>"
            raise not_nix(f"the Python function {getattr(value, '__qualname__', value)!r} has no Nix form: "
                          "only a whole NixOS module in `configuration` may be a function")
        return quote_string(str(value))

    def _annotated_text(self, value: Any, level: int) -> str:
        """The text of an annotated value, formatted once per depth for all the nodes it is in."""
        key = (id(value), level)
        known = self._annotated.get(key)
        if known is None:
            # The value is kept with its text, so that its id is not reused while the writer lives.
            known = self._annotated[key] = (value, self.text(value, level))
        return known[1]

    def _string(self, s: str, level: int) -> str:
        """Multi-line strings read best as indented strings, when Nix reads them back exactly."""
        indent = self.indent
        if indent is not None and _fits_indented(s):
            return _indented_string(s, " " * (indent * (level + 1)), " " * (indent * level))
        return quote_string(s)

    def _attrs(self, value: Mapping, level: int) -> str:
        """An attribute set, sorted as Nix sorts it, each value's note as a trailing comment."""
        items = sorted(value.items(), key=_key_text)
        if not items:
            return "{ }"
        text = self.text
        if self.indent is None:
            return "{ " + " ".join(f"{attr_name(str(k))} = {text(v)};" for k, v in items) + " }"
        pad = " " * (self.indent * (level + 1))
        lines = []
        for k, v in items:
            name, v = self._collapse(attr_name(str(k)), v)
            lines.append(f"{pad}{name} = {text(v, level + 1)};{_note(v)}\n")
        return "{\n" + "".join(lines) + " " * (self.indent * level) + "}"

    def _collapse(self, name: str, value: Any) -> tuple[str, Any]:
        """`a = { b = { c = 1; }; }` reads better as `a.b.c = 1;`."""
        value = self._force(value)
        while isinstance(value, Mapping) and len(value) == 1 and not isinstance(value, NixValue):
            (sub, value), = value.items()
            name, value = f"{name}.{attr_name(str(sub))}", self._force(value)
        return name, value

    def _list(self, value: list | tuple, level: int) -> str:
        """A list, an element per line when pretty-printed, each element's note as a comment."""
        if not value:
            return "[ ]"
        if self.indent is None:
            return "[ " + " ".join(self._element(v, 0) for v in value) + " ]"
        pad = " " * (self.indent * (level + 1))
        body = "".join(f"{pad}{self._element(v, level + 1)}{_note(v)}\n" for v in value)
        return "[\n" + body + " " * (self.indent * level) + "]"

    def _element(self, value: Any, level: int) -> str:
        text = self.text(value, level)
        # Function application inside a list needs parentheses: [ (lib.mkForce 1) ].
        if text.startswith("lib.") and not text.startswith("("):
            return f"({text})"
        return text


def _key_text(item: tuple[Any, Any]) -> str:
    """Attributes sort by name, as Nix sorts them."""
    return str(item[0])


def comment(text: str) -> str:
    """`text` as the body of a `#` comment: on one line, whatever it holds (Nix ends a comment at a
    line feed or a carriage return; the rest of the line would be code)."""
    return " ".join(text.split())


def _note(value: Any) -> str:
    """The trailing `# why` comment of an annotated value."""
    return "  # " + comment(value.note) if isinstance(value, Annotated) else ""


# Set while formatting for messages: numbers then read `-1` as nixpkgs' toPretty prints them,
# not the `(-1)` that Nix source needs inside a list.
_showing: contextvars.ContextVar[bool] = contextvars.ContextVar("nixus_showing", default=False)


def showing() -> bool:
    """Whether values are being written for a message, not as Nix source to evaluate."""
    return _showing.get()


def show_nix(value: NixValue) -> str:
    """A Nix value as output shows it (a value only Nix holds, such as a function, by its kind)."""
    token = _showing.set(True)
    try:
        return value.nix()
    finally:
        _showing.reset(token)


def show_value(value: Any, limit: int = 5) -> str:
    """A short pretty form for error messages (first `limit` lines, like nixpkgs' showDefs)."""
    try:
        token = _showing.set(True)
        try:
            text = to_nix(value, indent=2)
        finally:
            _showing.reset(token)
    except Exception:  # noqa: BLE001 - showing a value must never hide the real error
        return "<unprintable>"
    lines = text.split("\n")
    if len(lines) > limit:
        lines = lines[:limit] + ["..."]
    return "\n    ".join(lines)

