"""Types whose values are modules: `submodule` (evaluated here) and `deferredModule` (kept)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..nixlang import NixValue
from .declarations import DeclarationCache
from .errors import EvalError
from .location import Loc
from .modulevalues import DeferredModule, FileModule, ModuleRef
from .properties import Definition
from .optiontypes import OptionType, phrase

if TYPE_CHECKING:
    from .modules import Evaluation


def _is_module(value: Any) -> bool:
    return (isinstance(value, (dict, Mapping, str, NixValue, ModuleRef, DeferredModule))  # dict: no ABC check
            or (callable(value) and not isinstance(value, type)))


class Submodule(OptionType):
    """A nested module evaluation per definition site (`types.submodule`, `types.submoduleWith`)."""

    name = "submodule"
    description_class = None

    def __init__(self, modules: list, special_args: Mapping[str, Any] | None = None,
                 shorthand: bool | None = True, description: str | None = None):
        self.modules = list(modules)
        self.special_args = dict(special_args or {})
        self.shorthand = shorthand
        self._description = description
        self._declarations = DeclarationCache()  # shared by this type's evaluations (one per node)

    @property
    def description(self) -> str:  # type: ignore[override]
        """`submodule`, or `open submodule of <freeform type>` as nixpkgs describes freeform ones."""
        if self._description:
            return self._description
        try:
            freeform = self._base.node(("_module", "freeformType")).evaluate()
        except EvalError:
            freeform = None
        return "submodule" if freeform is None else f"open submodule of {phrase(freeform, ('noun', 'composite'))}"

    @cached_property
    def _base(self) -> Evaluation:
        """The type's own modules, evaluated without definitions (nixpkgs' `base`)."""
        return self._evaluation(self.modules, (), "‹name›")

    def _evaluation(self, modules: list, prefix: tuple, name: str) -> Evaluation:
        from .modules import Evaluation
        return Evaluation(modules, prefix=prefix, special_args={**self.special_args, "name": name},
                          declarations=self._declarations)

    @property
    def sub_modules(self) -> list:  # type: ignore[override]
        return self.modules

    def check(self, value: Any) -> bool:
        return _is_module(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        defined = [FileModule(d.file, d.value, config_only=bool(self.shorthand) and isinstance(d.value, Mapping)
                              and not isinstance(d.value, NixValue)) for d in defs]
        return self._evaluation(self.modules + defined, loc, loc[-1] if loc else "").config

    def empty(self, loc: tuple) -> Any:
        """An undefined submodule option is its modules' config (with the `‹name›` placeholder)."""
        return self._evaluation(self.modules, loc, "‹name›").config

    def get_sub_options(self, prefix: tuple) -> Any:
        return self._evaluation(self.modules, prefix, "<name>").options

    def subst_sub_modules(self, modules: list) -> OptionType:
        return Submodule(modules, self.special_args, self.shorthand, self._description)

    def type_merge(self, other: OptionType) -> OptionType | None:
        if not isinstance(other, Submodule):
            return None
        if isinstance(other, type(self)) and type(other) is not type(self):
            return other.type_merge(self)  # a more specific submodule type decides
        shorthand = self.shorthand if other.shorthand is None else (
            other.shorthand if self.shorthand is None else self.shorthand)
        if self.shorthand is not None and other.shorthand is not None and self.shorthand != other.shorthand:
            return None
        return Submodule(self.modules + other.modules, {**self.special_args, **other.special_args}, shorthand,
                         self._description or other._description)


class DeferredModuleType(OptionType):
    name = "deferredModule"
    description = "module"

    def __init__(self, static_modules: list | None = None):
        self.static_modules = list(static_modules or [])

    def check(self, value: Any) -> bool:
        return _is_module(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> DeferredModule:
        static = [Definition(Loc("<static module>"), m) for m in self.static_modules]
        return DeferredModule(static + list(defs))

    def type_merge(self, other: OptionType) -> OptionType | None:
        if isinstance(other, DeferredModuleType):
            return DeferredModuleType(self.static_modules + other.static_modules)
        return None


def submodule_with(modules: list, special_args: Mapping[str, Any] | None = None,
                   shorthandOnlyDefinesConfig: bool = False, description: str | None = None) -> Submodule:
    return Submodule(modules, special_args, shorthandOnlyDefinesConfig, description)


def submodule(module: Any) -> Submodule:
    return Submodule(module if isinstance(module, list) else [module], shorthand=True)


