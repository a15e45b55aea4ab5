"""Merging the definitions of one option: nixpkgs' `mergeDefinitions` and `evalOptionValue`."""

from __future__ import annotations

from typing import Any

from .errors import EvalError, show_defs, show_option
from .properties import Definition, Property, discharge, filter_overrides, force, sort_properties
from .optiontypes import NO_VALUE, OptionType


class Merged:
    """The definitions that survived properties and priorities, and their merged value."""

    __slots__ = ("loc", "type", "defs", "highest_prio", "_value", "_done")

    def __init__(self, loc: tuple, type_: OptionType, defs: list[Definition], highest_prio: int):
        self.loc, self.type, self.defs, self.highest_prio = loc, type_, defs, highest_prio
        self._done = False

    @property
    def is_defined(self) -> bool:
        return bool(self.defs)

    def value(self) -> Any:
        """The merged value (a method, not a property: properties cost C stack in deep option chains)."""
        if not self._done:
            self._value, self._done = self._merge(), True
        return self._value

    def _merge(self) -> Any:
        t, loc = self.type, self.loc
        if self.defs:
            bad = [d for d in self.defs if not t.check(d.value)]
            if bad:
                raise EvalError(f"A definition for option `{show_option(loc)}' is not of type "
                                f"`{t.description}'. Definition values:{show_defs(bad)}",
                                loc, [str(d.file) for d in bad])
            return t.merge(loc, self.defs)
        empty = t.empty(loc)
        if empty is not NO_VALUE:
            return empty
        raise EvalError(f"The option `{show_option(loc)}' was accessed but has no value defined. "
                        f"Try setting the option.", loc)


def merge_definitions(loc: tuple, type_: OptionType, defs: list[Definition]) -> Merged:
    """Discharge mkIf/mkMerge, keep the highest priority, sort by mkOrder; merge lazily."""
    normalized: list[Definition] = []
    for d in defs:
        try:
            v = force(d.value)
            if not isinstance(v, Property):  # fast path: a plain value
                normalized.append(d if v is d.value else Definition(d.file, v))
                continue
            values = discharge(v)
        except EvalError as e:
            if e.option is not None:
                raise
            raise type(e)(f"{e} (in the definition of `{show_option(loc)}' at {d.file})",
                          loc, [str(d.file)]) from None
        normalized.extend(Definition(d.file, x) for x in values)
    if not normalized:
        return Merged(loc, type_, [], 9999)
    kept, prio = filter_overrides(normalized)
    return Merged(loc, type_, sort_properties(kept), prio)
