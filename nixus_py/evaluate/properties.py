"""Definition properties (`mkIf`, `mkMerge`, `mkOverride`, `mkOrder`) and lazy values.

The same phases as nixpkgs `lib/modules.nix`: `push_down` moves properties from a config set into
its attributes, `discharge` expands merges and evaluates conditions, `filter_overrides` keeps the
highest priority and `sort_properties` orders what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import EvalCycle, EvalError, type_name
from .location import Loc, relocate

DEFAULT_OVERRIDE_PRIORITY = 100
OPTION_DEFAULT_PRIORITY = 1500
DEFAULT_ORDER_PRIORITY = 1000

_OVERRIDE_NAMES = {50: "lib.mkForce", 1000: "lib.mkDefault", 1500: "lib.mkOptionDefault",
                   10: "lib.mkVMOverride", 60: "lib.mkImageMediaOverride"}
_ORDER_NAMES = {500: "lib.mkBefore", 1500: "lib.mkAfter"}


class Lazy:
    """A value computed on first use, like a Nix thunk (`nixus.lazy(lambda: ...)`)."""

    __slots__ = ("_fn", "_value", "_done")

    def __init__(self, fn: Callable[[], Any]):
        self._fn, self._value, self._done = fn, None, False

    def force(self) -> Any:
        if self._done:
            return self._value
        fn = self._fn
        if fn is None:
            raise EvalCycle("infinite recursion encountered: a lazy value needs its own value")
        self._fn = None  # type: ignore[assignment]  # "being computed": a second force is a cycle
        try:
            value = force(fn())
        except BaseException:
            self._fn = fn
            raise
        self._value, self._done = value, True
        return value


def lazy(fn: Callable[[], Any]) -> Lazy:
    """Defer a value until the module system needs it, so it may read `config` freely."""
    return Lazy(fn)


def force(value: Any) -> Any:
    """Evaluate a lazy value to a plain one (idempotent for everything else)."""
    while isinstance(value, Lazy):
        value = value.force()
    return value


class Property:
    """A wrapper around a definition that the module system interprets."""

    __slots__ = ()

    def to_nix(self, indent: int | None, level: int) -> str:
        raise NotImplementedError


@dataclass(slots=True)
class If(Property):
    condition: Any
    content: Any

    def to_nix(self, indent: int | None, level: int) -> str:
        return f"lib.mkIf {_arg(self.condition, indent, level)} {_arg(self.content, indent, level)}"


@dataclass(slots=True)
class Merge(Property):
    contents: list

    def to_nix(self, indent: int | None, level: int) -> str:
        from ..nixlang import to_nix
        return f"lib.mkMerge {to_nix(_contents(self), indent, level)}"


@dataclass(slots=True)
class Override(Property):
    priority: int
    content: Any

    def to_nix(self, indent: int | None, level: int) -> str:
        name = _OVERRIDE_NAMES.get(self.priority)
        head = name if name else f"lib.mkOverride {_arg(self.priority, None, 0)}"
        return f"{head} {_arg(self.content, indent, level)}"


@dataclass(slots=True)
class Order(Property):
    priority: int
    content: Any

    def to_nix(self, indent: int | None, level: int) -> str:
        name = _ORDER_NAMES.get(self.priority)
        head = name if name else f"lib.mkOrder {_arg(self.priority, None, 0)}"
        return f"{head} {_arg(self.content, indent, level)}"


@dataclass(slots=True)
class Defined(Property):
    """lib.mkDefinition: a definition that names its own file (a module that forwards definitions)."""

    file: str
    value: Any

    def to_nix(self, indent: int | None, level: int) -> str:
        from ..nixlang import to_nix
        return f"lib.mkDefinition {to_nix({'file': self.file, 'value': self.value}, indent, level)}"


def mkDefinition(file: str, value: Any) -> Defined:
    return Defined(file, value)


def _arg(value: Any, indent: int | None, level: int) -> str:
    from ..nixlang import to_nix
    text = to_nix(force(value), indent, level)
    return f"({text})" if text.startswith("lib.") or text.startswith("(-") else text


def mkIf(condition: Any, content: Any) -> If:
    return If(condition, content)


def mkMerge(contents: list | Lazy) -> Merge:
    return Merge(contents if isinstance(contents, Lazy) else list(contents))


def int_priority(value: Any, what: str) -> Any:
    """A priority as nixpkgs compares them: an integer (a string there would be Nix code, or a
    crash when priorities are compared), or a lazy value that will be one."""
    if type(value) is not int and not isinstance(value, Lazy):
        raise EvalError(f"{what}: the priority must be an integer, not {type(value).__name__} {value!r}")
    return value


def mkOverride(priority: int, content: Any) -> Override:
    return Override(int_priority(priority, "mkOverride"), content)


def mkForce(content: Any) -> Override:
    return Override(50, content)


def mkDefault(content: Any) -> Override:
    return Override(1000, content)


def mkOptionDefault(content: Any) -> Override:
    return Override(OPTION_DEFAULT_PRIORITY, content)


def mkVMOverride(content: Any) -> Override:
    return Override(10, content)


def mkImageMediaOverride(content: Any) -> Override:
    return Override(60, content)


def mkOrder(priority: int, content: Any) -> Order:
    return Order(int_priority(priority, "mkOrder"), content)


def mkBefore(content: Any) -> Order:
    return Order(500, content)


def mkAfter(content: Any) -> Order:
    return Order(1500, content)


@dataclass(slots=True)
class Definition:
    """One definition of an option: where it was written and its (possibly wrapped) value."""

    file: Loc
    value: Any
    priority: int = DEFAULT_ORDER_PRIORITY


def push_down(cfg: Any) -> list:
    """Expand mkMerge and push mkIf/mkOverride into the attributes of a config set."""
    cfg = force(cfg)
    if isinstance(cfg, Merge):
        return [x for c in _contents(cfg) for x in push_down(c)]
    if isinstance(cfg, If):
        return [_map_attrs(x, lambda v, c=cfg.condition: If(c, v)) for x in push_down(cfg.content)]
    if isinstance(cfg, Override):
        return [_map_attrs(x, lambda v, p=cfg.priority: Override(p, v)) for x in push_down(cfg.content)]
    return [cfg]


def _map_attrs(value: Any, wrap: Callable[[Any], Any]) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, Property):
        return relocate(value, {k: wrap(v) for k, v in value.items()})
    return value


def _contents(merge: Merge) -> list:
    """What a mkMerge merges: a list, which may itself be a value not evaluated yet (from Nix)."""
    contents = force(merge.contents)
    if not isinstance(contents, list):
        raise EvalError(f"lib.mkMerge expects a list, but got a {type_name(contents)}")
    return contents


def discharge(value: Any) -> list:
    """Expand mkMerge and evaluate mkIf conditions, giving the plain values that remain."""
    value = force(value)
    if isinstance(value, Merge):
        return [x for c in _contents(value) for x in discharge(c)]
    if isinstance(value, If):
        cond = force(value.condition)
        if not isinstance(cond, bool):
            raise EvalError("‘mkIf’ called with a non-Boolean condition")
        return discharge(value.content) if cond else []
    return [value]


def filter_overrides(defs: list[Definition]) -> tuple[list[Definition], int]:
    """Keep the definitions with the highest priority (lowest number), stripping mkOverride."""
    highest = 9999
    for d in defs:
        v = d.value
        priority = v.priority if isinstance(v, Override) else DEFAULT_OVERRIDE_PRIORITY
        if priority < highest:
            highest = priority
    kept = []
    for d in defs:
        v = d.value
        if not isinstance(v, Override):
            if highest == DEFAULT_OVERRIDE_PRIORITY:
                kept.append(d)
        elif v.priority == highest:
            kept.append(Definition(d.file, force(v.content)))
    return kept, highest


def sort_properties(defs: list[Definition]) -> list[Definition]:
    """Order definitions by mkOrder priority; stable, like Nix's builtins.sort."""
    for d in defs:
        if isinstance(d.value, Order):
            break
    else:
        return defs
    stripped = [Definition(d.file, force(d.value.content), d.value.priority) if isinstance(d.value, Order)
                else d for d in defs]
    return sorted(stripped, key=lambda d: d.priority)
