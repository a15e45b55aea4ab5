"""Option types with the protocol of nixpkgs `lib/types.nix`.

Every type is one object with `name`, `description`, `check`, `merge(loc, defs)`, `empty(loc)` for
an option without definitions (from `empty_value`), `get_sub_options(prefix)`,
`sub_modules`/`subst_sub_modules` for submodules, `type_merge` for merging two declarations of one
option, and `nested_types`.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..nixlang import NixPath, NixValue, to_nix
from .errors import PRIORITY_SUGGESTION, EvalError, show_defs, show_files, show_option
from .lazyattrs import LazyAttrs
from .location import line_of
from .merge import NO_VALUE, merge_definitions
from .properties import Definition


class OptionType:
    """Base of all types: accepts anything, merges like nixpkgs' mergeDefaultOption."""

    name = "unspecified"
    description = "unspecified value"
    description_class: str | None = "noun"
    empty_value: Any = NO_VALUE
    sub_modules: list | None = None

    def check(self, value: Any) -> bool:
        return True

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        return merge_default_option(loc, defs)

    def head_error(self, loc: tuple, defs: list[Definition]) -> EvalError | None:
        """Why definitions that each pass `check` do not make an option's value (nixpkgs' v2
        `headError`), or None. `merge` called directly (a freeformType) does not ask."""
        return None

    def empty(self, loc: tuple) -> Any:
        """The value of `loc` when it has no definitions (nixpkgs' `emptyValue`), or NO_VALUE."""
        value = self.empty_value
        return value.copy() if isinstance(value, (dict, list)) else value

    def get_sub_options(self, prefix: tuple) -> dict:
        return {}

    def subst_sub_modules(self, modules: list) -> OptionType:
        return self

    @property
    def nested_types(self) -> dict[str, OptionType]:
        return {}

    def payload(self) -> Any:
        """What distinguishes two types of the same name (used by `type_merge`)."""
        return None

    def type_merge(self, other: OptionType) -> OptionType | None:
        """The type for two declarations of one option, or None when they conflict."""
        if type(self) is type(other) and self.name == other.name and self.payload() == other.payload():
            return self
        return None

    def __repr__(self) -> str:
        return f"<type {self.description}>"


def restated(t: OptionType, **fields: Any) -> OptionType:
    """A copy of `t` with `fields` (`description`, `description_class`, `empty_value`) as a module
    restated them (`type // { description = ...; }`), also where `t`'s class computes them."""
    out = copy.copy(t)
    out.__class__ = type(type(t).__name__, (type(t),), fields)
    return out


def phrase(t: OptionType, classes: tuple[str, ...]) -> str:
    """nixpkgs' optionDescriptionPhrase: parenthesise the description unless its class allows."""
    return t.description if t.description_class in classes else f"({t.description})"


# --- merge functions ---------------------------------------------------------------------------

def merge_equal_option(loc: tuple, defs: list[Definition]) -> Any:
    """All definitions must be equal; the value is that value."""
    first = defs[0]
    for d in defs[1:]:
        if not _equal(d.value, first.value):
            raise EvalError(
                f"The option `{show_option(loc)}' has conflicting definition values:"
                f"{show_defs([first, d])}\n{PRIORITY_SUGGESTION}", loc, [str(first.file), str(d.file)])
    return first.value


def _equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def merge_one_option(loc: tuple, defs: list[Definition], message: str = "") -> Any:
    """Exactly one definition is allowed (types.uniq / types.unique)."""
    if len(defs) == 1:
        return defs[0].value
    raise EvalError(
        f"The option `{show_option(loc)}' is defined multiple times while it's expected to be unique.\n"
        f"{message}\nDefinition values:{show_defs(defs)}\n{PRIORITY_SUGGESTION}", loc,
        [str(d.file) for d in defs])


def merge_default_option(loc: tuple, defs: list[Definition]) -> Any:
    """nixpkgs' mergeDefaultOption: one value, or lists concatenated, sets merged, bools or-ed."""
    values = [d.value for d in defs]
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, list) for v in values):
        return [x for v in values for x in v]
    if all(isinstance(v, Mapping) for v in values):
        out: dict = {}
        for v in values:
            out.update(v)
        return out
    if all(isinstance(v, bool) for v in values):
        return any(values)
    if all(isinstance(v, str) for v in values):
        return "".join(values)
    if all(_is_int(v) for v in values) and all(v == values[0] for v in values):
        return values[0]
    raise EvalError(f"Cannot merge definitions of `{show_option(loc)}'. Definition values:{show_defs(defs)}",
                    loc, [str(d.file) for d in defs])


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --- simple types --------------------------------------------------------------------------------

class SimpleType(OptionType):
    """A type given by a name, description, check function and merge function."""

    def __init__(self, name: str, description: str, check: Callable[[Any], bool],
                 merge: Callable[[tuple, list[Definition]], Any] = merge_equal_option,
                 description_class: str | None = "noun", payload: Any = None):
        self.name, self.description = name, description
        # The functions are the type's `check` and `merge` themselves, not called by methods: every
        # definition of every option goes through them.
        self.check, self.merge = check, merge  # type: ignore[method-assign]
        self.description_class, self._payload = description_class, payload

    def payload(self) -> Any:
        return self._payload


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_path(v: Any) -> bool:
    return isinstance(v, NixPath) or (isinstance(v, str) and v.startswith("/"))


def separated_string(sep: str) -> SimpleType:
    """Strings concatenated with `sep` (types.lines, types.commas)."""
    return SimpleType("separatedString", f"strings concatenated with {_json(sep)}", _is_str,
                      lambda loc, defs: sep.join(d.value for d in defs), payload=sep)


def _json(s: str) -> str:
    import json
    return json.dumps(s)


def add_check(base: OptionType, extra: Callable[[Any], bool], name: str | None = None,
              description: str | None = None, description_class: str | None = None) -> OptionType:
    """`base` with an extra check, as nixpkgs' types.addCheck (optionally renamed)."""
    t = SimpleType(name or base.name, description or base.description,
                   lambda v: base.check(v) and bool(extra(v)), base.merge,
                   description_class if description_class is not None else base.description_class,
                   payload=(base.name, name, description))
    return t


def ints_between(lowest: int, highest: int, name: str = "intBetween", doc: str | None = None) -> OptionType:
    rng = f"{lowest} and {highest} (both inclusive)"
    desc = f"{doc}; between {rng}" if doc else f"integer between {rng}"
    return add_check(int_, lambda x: lowest <= x <= highest, name, desc)


def str_matching(pattern: str) -> OptionType:
    """A string matching a POSIX-style regular expression (whole string)."""
    rx = re.compile(pattern, re.S)
    return SimpleType(f"strMatching {to_nix(pattern)}", f"string matching the pattern {pattern}",
                      lambda v: isinstance(v, str) and rx.fullmatch(v) is not None, payload=pattern)


class Enum(OptionType):
    name = "enum"

    def __init__(self, values: Sequence[Any]):
        self.values = list(values)
        self.description_class = "noun" if len(self.values) < 2 else "conjunction"

    @property
    def description(self) -> str:  # type: ignore[override]
        if not self.values:
            return "impossible (empty enum)"
        if len(self.values) == 1:
            return f"value {to_nix(self.values[0])} (singular enum)"
        return "one of " + ", ".join(to_nix(v) for v in self.values)

    def check(self, value: Any) -> bool:
        return any(_equal(value, v) for v in self.values)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        return merge_equal_option(loc, defs)

    def payload(self) -> Any:
        return tuple(self.values)

    def type_merge(self, other: OptionType) -> OptionType | None:
        if isinstance(other, Enum):  # nixpkgs unions the values of two enum declarations
            return Enum(self.values + [v for v in other.values if v not in self.values])
        return None


# --- composite types -----------------------------------------------------------------------------

class ElemType(OptionType):
    """A type built from one element type (listOf, attrsOf, nullOr, uniq, ...)."""

    def __init__(self, elem: OptionType):
        self.elem = elem

    @property
    def nested_types(self) -> dict[str, OptionType]:
        return {"elemType": self.elem}

    @property
    def sub_modules(self) -> list | None:  # type: ignore[override]
        return self.elem.sub_modules

    def get_sub_options(self, prefix: tuple) -> dict:
        return self.elem.get_sub_options(prefix)

    def subst_sub_modules(self, modules: list) -> OptionType:
        return self._rebuild(self.elem.subst_sub_modules(modules))

    def type_merge(self, other: OptionType) -> OptionType | None:
        if type(self) is not type(other) or self.name != other.name:
            return None
        elem = self.elem.type_merge(other.elem)  # type: ignore[attr-defined]
        return None if elem is None else self._rebuild(elem)

    def _rebuild(self, elem: OptionType) -> OptionType:
        return type(self)(elem)


class ListOf(ElemType):
    name = "listOf"
    description_class = "composite"
    empty_value: Any = []

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"list of {phrase(self.elem, ('noun', 'composite'))}"

    def check(self, value: Any) -> bool:
        return isinstance(value, list)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        out = []
        for n, d in enumerate(defs, 1):
            for m, v in enumerate(d.value, 1):
                r = merge_definitions(loc + (f"[definition {n}-entry {m}]",), self.elem,
                                      [Definition(d.file, v)])
                if r.is_defined:
                    out.append(r.value())
        return out

    def get_sub_options(self, prefix: tuple) -> dict:
        return self.elem.get_sub_options(prefix + ("*",))


class AttrsOf(ElemType):
    description_class = "composite"
    empty_value: Any = {}

    def __init__(self, elem: OptionType, lazy: bool = False):
        super().__init__(elem)
        self.lazy = lazy
        self.name = "lazyAttrsOf" if lazy else "attrsOf"

    @property
    def description(self) -> str:  # type: ignore[override]
        kind = "lazy attribute set" if self.lazy else "attribute set"
        return f"{kind} of {phrase(self.elem, ('noun', 'composite'))}"

    def check(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        by_name: dict[str, list[Definition]] = {}
        for d in defs:
            for k, v in d.value.items():
                by_name.setdefault(k, []).append(Definition(d.file.at(line_of(d.value, k)), v))
        elem = self.elem

        def value(name: str) -> Any:
            return merge_definitions(loc + (name,), elem, by_name[name]).value()

        if self.lazy:
            return LazyAttrs(list(by_name), value)
        # attrsOf drops names whose definitions all vanish (mkIf false); values stay lazy.
        merged = {name: merge_definitions(loc + (name,), elem, ds) for name, ds in by_name.items()}
        return LazyAttrs([n for n, r in merged.items() if r.is_defined], lambda n: merged[n].value())

    def get_sub_options(self, prefix: tuple) -> dict:
        return self.elem.get_sub_options(prefix + ("<name>",))

    def _rebuild(self, elem: OptionType) -> OptionType:
        return AttrsOf(elem, self.lazy)


class NullOr(ElemType):
    name = "nullOr"
    description_class = "conjunction"
    empty_value: Any = None

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"null or {phrase(self.elem, ('noun', 'conjunction'))}"

    def check(self, value: Any) -> bool:
        return value is None or self.elem.check(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        nulls = sum(1 for d in defs if d.value is None)
        if nulls == len(defs):
            return None
        if nulls:
            raise EvalError(f"The option `{show_option(loc)}` is defined both null and not null, in "
                            f"{show_files(d.file for d in defs)}.", loc, [str(d.file) for d in defs])
        return self.elem.merge(loc, defs)


class Unique(ElemType):
    name = "unique"

    def __init__(self, elem: OptionType, message: str = ""):
        super().__init__(elem)
        self.message = message

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.elem.description

    @property
    def description_class(self) -> str | None:  # type: ignore[override]
        return self.elem.description_class

    def check(self, value: Any) -> bool:
        return self.elem.check(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        merge_one_option(loc, defs, self.message)
        return self.elem.merge(loc, defs)

    def empty(self, loc: tuple) -> Any:
        return self.elem.empty(loc)

    def _rebuild(self, elem: OptionType) -> OptionType:
        return Unique(elem, self.message)


class Either(OptionType):
    name = "either"
    description_class = "conjunction"

    def __init__(self, left: OptionType, right: OptionType):
        self.left, self.right = left, right

    @property
    def description(self) -> str:  # type: ignore[override]
        if self.left.description_class == "nonRestrictiveClause":
            return f"{self.left.description}, or {phrase(self.right, ('noun', 'conjunction'))}"
        return (f"{phrase(self.left, ('noun', 'conjunction'))} or "
                f"{phrase(self.right, ('noun', 'conjunction', 'composite'))}")

    @property
    def nested_types(self) -> dict[str, OptionType]:
        return {"left": self.left, "right": self.right}

    def check(self, value: Any) -> bool:
        return self.left.check(value) or self.right.check(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        for t in (self.left, self.right):
            if _accepts_all(t, defs):
                return t.merge(loc, defs)
        # As nixpkgs' either merges when called directly (a bare either as freeformType): the one
        # definition, with a warning.
        warnings.warn("One or more definitions did not pass the type-check of the 'either' type.\n"
                      f"{self._neither(loc, defs)}\nIf `either`, `oneOf` or similar is used in freeformType, "
                      "ensure that it is preceded by an 'attrsOf' such as: "
                      "`freeformType = types.attrsOf (types.either t1 t2)`.", stacklevel=2)
        return merge_one_option(loc, defs)

    def head_error(self, loc: tuple, defs: list[Definition]) -> EvalError | None:
        if _accepts_all(self, defs):
            return None
        where = show_option(loc)
        return EvalError(f"A definition for option `{where}' is not of type `{self.description}'. "
                         f"{self._neither(loc, defs)}", loc, [str(d.file) for d in defs])

    def _neither(self, loc: tuple, defs: list[Definition]) -> str:
        return (f"The option `{show_option(loc)}` is neither a value of type `{self.left.description}` nor "
                f"`{self.right.description}`. Definition values:{show_defs(defs)}")

    def type_merge(self, other: OptionType) -> OptionType | None:
        if not isinstance(other, Either):
            return None
        left, right = self.left.type_merge(other.left), self.right.type_merge(other.right)
        return None if left is None or right is None else Either(left, right)


def _accepts_all(t: OptionType, defs: list[Definition]) -> bool:
    """Whether `t` can merge all `defs` (for `either`: one of its branches can)."""
    if isinstance(t, Either):
        return _accepts_all(t.left, defs) or _accepts_all(t.right, defs)
    return all(t.check(d.value) for d in defs)


def one_of(ts: Sequence[OptionType]) -> OptionType:
    if not ts:
        raise EvalError("types.oneOf needs at least one type in its argument")
    out = ts[0]
    for t in ts[1:]:
        out = Either(out, t)
    return out


class CoercedTo(OptionType):
    name = "coercedTo"
    description_class = None

    def __init__(self, from_type: OptionType, coerce: Callable[[Any], Any], final: OptionType):
        self.from_type, self.coerce, self.final = from_type, coerce, final

    @property
    def description(self) -> str:  # type: ignore[override]
        return (f"{phrase(self.final, ('noun',))} or {phrase(self.from_type, ('noun',))} "
                f"convertible to it")

    def check(self, value: Any) -> bool:
        return self.final.check(value) or (self.from_type.check(value) and self.final.check(self.coerce(value)))

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        coerced = [Definition(d.file, d.value if not self.from_type.check(d.value) else self.coerce(d.value))
                   for d in defs]
        return self.final.merge(loc, coerced)

    def empty(self, loc: tuple) -> Any:
        return self.final.empty(loc)

    @property
    def nested_types(self) -> dict[str, OptionType]:
        return {"coercedType": self.from_type, "finalType": self.final}

    @property
    def sub_modules(self) -> list | None:  # type: ignore[override]
        return self.final.sub_modules

    def get_sub_options(self, prefix: tuple) -> Any:
        return self.final.get_sub_options(prefix)

    def subst_sub_modules(self, modules: list) -> OptionType:
        return CoercedTo(self.from_type, self.coerce, self.final.subst_sub_modules(modules))

    def type_merge(self, other: OptionType) -> OptionType | None:
        return None  # as in nixpkgs: two declarations of a coercedTo option conflict


class Anything(OptionType):
    name = "anything"
    description = "anything"

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        kinds = {_kind(d.value) for d in defs}
        if len(kinds) > 1:
            raise EvalError(f"The option `{show_option(loc)}' has conflicting option types in "
                            f"{show_files(d.file for d in defs)}", loc, [str(d.file) for d in defs])
        kind = kinds.pop()
        if kind == "set":
            return AttrsOf(self).merge(loc, defs)
        if kind == "lambda" and len(defs) > 1:
            return lambda *args: self.merge(loc + ("<function body>",),
                                            [Definition(d.file, d.value(*args)) for d in defs])
        if kind in ("opaque", "lambda"):
            return merge_one_option(loc, defs)
        return merge_equal_option(loc, defs)  # lists too: nixpkgs does not concatenate them


def _kind(v: Any) -> str:
    if isinstance(v, Mapping):
        return "set"
    if isinstance(v, list):
        return "list"
    if isinstance(v, NixValue):
        return "opaque"
    if callable(v):
        return "lambda"
    return type(v).__name__


class Attrs(OptionType):
    name = "attrs"
    description = "attribute set"
    description_class = None
    empty_value: Any = {}

    def check(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        out: dict = {}
        for d in defs:
            out.update(d.value)
        return out


class Raw(OptionType):
    name = "raw"
    description = "raw value"

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        return merge_one_option(loc, defs)


class NixValueType(OptionType):
    """A Nix value Python never evaluates (`nix.expr`, `nix.path`, a Nix package) or plain data."""

    name = "nixValue"
    description = "Nix value"

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        return merge_one_option(loc, defs)


# Built-in instances, named as in nixpkgs.
unspecified = OptionType()
bool_ = SimpleType("bool", "boolean", lambda v: isinstance(v, bool))
int_ = SimpleType("int", "signed integer", _is_int)
float_ = SimpleType("float", "floating point number", lambda v: isinstance(v, float))
number = Either(int_, float_)
str_ = SimpleType("str", "string", _is_str)
non_empty_str = SimpleType("nonEmptyStr", "non-empty string",
                           lambda v: isinstance(v, str) and re.fullmatch(r"[ \t\n]*", v) is None)
single_line_str = SimpleType("singleLineStr", "(optionally newline-terminated) single-line string",
                             str_matching(r"[^\n\r]*\n?").check,
                             lambda loc, defs: merge_equal_option(loc, defs).removesuffix("\n"))
lines = separated_string("\n")
commas = separated_string(",")
env_var = separated_string(":")
path = SimpleType("path", "absolute path", _is_path)
anything = Anything()
attrs = Attrs()
raw = Raw()
nix_value = NixValueType()
package = SimpleType("package", "package", lambda v: isinstance(v, (NixValue, Mapping, str)), merge_one_option)
