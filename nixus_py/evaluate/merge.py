"""Merging the definitions of one option: nixpkgs' `mergeDefinitions` and `evalOptionValue`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import EvalError, show_defs, show_option
from .location import Loc
from .properties import (DEFAULT_OVERRIDE_PRIORITY, Defined, Definition, If, Lazy, Merge, Override, Property,
                         discharge, filter_overrides, force, sort_properties)

if TYPE_CHECKING:  # the types merge their elements with this module
    from .optiontypes import OptionType

NO_VALUE = object()  # marks "this type has no empty value" (OptionType.empty)


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
        if self._done:
            return self._value
        t, loc, defs = self.type, self.loc, self.defs
        if not defs:
            value = t.empty(loc)
            if value is NO_VALUE:
                raise EvalError(f"The option `{show_option(loc)}' was accessed but has no value defined. "
                                f"Try setting the option.", loc)
        else:
            for d in defs:
                if not t.check(d.value):
                    self._not_of_type()
            error = t.head_error(loc, defs)
            if error is not None:
                raise error
            value = t.merge(loc, defs)
        self._value, self._done = value, True
        return value

    def _not_of_type(self) -> None:
        t, loc = self.type, self.loc
        bad = [d for d in self.defs if not t.check(d.value)]
        raise EvalError(f"A definition for option `{show_option(loc)}' is not of type `{t.description}'. "
                        f"Definition values:{show_defs(bad)}", loc, [str(d.file) for d in bad])


def merge_definitions(loc: tuple, type_: OptionType, defs: list[Definition]) -> Merged:
    """Discharge mkIf/mkMerge, keep the highest priority, sort by mkOrder; merge lazily."""
    if len(defs) == 1:
        v = defs[0].value
        if not isinstance(v, (Lazy, Property)):  # e.g. each element of a list
            return Merged(loc, type_, defs, DEFAULT_OVERRIDE_PRIORITY)
        if type(v) is Override and not isinstance(v.content, (Lazy, Property)):  # e.g. a default alone
            return Merged(loc, type_, [Definition(defs[0].file, v.content)], v.priority)
    normalized: list[Definition] = []
    for d in defs:
        try:
            v = d.value
            if isinstance(v, Lazy):
                v = force(v)
            if not isinstance(v, (If, Merge, Defined)):  # fast path: nothing to discharge
                normalized.append(d if v is d.value else Definition(d.file, v))
                continue
            values = discharge(v)
        except EvalError as e:
            if e.option is not None:
                raise
            raise type(e)(f"{e} (in the definition of `{show_option(loc)}' at {d.file})",
                          loc, [str(d.file)]) from None
        # A definition from lib.mkDefinition names its own file (after mkMerge and mkIf, as in nixpkgs).
        normalized.extend(Definition(Loc(str(force(x.file))), x.value) if isinstance(x, Defined)
                          else Definition(d.file, x) for x in values)
    if not normalized:
        return Merged(loc, type_, [], 9999)
    kept, prio = filter_overrides(normalized)
    return Merged(loc, type_, sort_properties(kept), prio)
