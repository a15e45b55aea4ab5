"""Types whose values are modules: `submodule` (evaluated here) and `deferredModule` (kept)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..nixlang import NixValue
from .properties import Definition
from .optiontypes import OptionType


def _is_module(value: Any) -> bool:
    from .modules import ModuleRef
    return (isinstance(value, (Mapping, str, NixValue, ModuleRef, DeferredModule))
            or (callable(value) and not isinstance(value, type)))


class Submodule(OptionType):
    """A nested module evaluation per definition site (`types.submodule`, `types.submoduleWith`)."""

    name = "submodule"
    description_class = "noun"
    empty_value: Any = {}

    def __init__(self, modules: list, special_args: Mapping[str, Any] | None = None,
                 shorthand: bool | None = True, description: str | None = None):
        self.modules = list(modules)
        self.special_args = dict(special_args or {})
        self.shorthand = shorthand
        self._description = description

    @property
    def description(self) -> str:  # type: ignore[override]
        return self._description or "submodule"

    @property
    def sub_modules(self) -> list:  # type: ignore[override]
        return self.modules

    def check(self, value: Any) -> bool:
        return _is_module(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        from .modules import Evaluation, FileModule
        defined = [FileModule(d.file, d.value, config_only=bool(self.shorthand) and isinstance(d.value, Mapping)
                              and not isinstance(d.value, NixValue)) for d in defs]
        ev = Evaluation(self.modules + defined, prefix=loc,
                        special_args={**self.special_args, "name": loc[-1] if loc else ""})
        return ev.config

    def get_sub_options(self, prefix: tuple) -> Any:
        from .modules import Evaluation
        ev = Evaluation(self.modules, prefix=prefix, special_args={**self.special_args, "name": "<name>"})
        return ev.options

    def subst_sub_modules(self, modules: list) -> OptionType:
        return Submodule(modules, self.special_args, self.shorthand, self._description)

    def type_merge(self, other: OptionType) -> OptionType | None:
        if not isinstance(other, Submodule):
            return None
        shorthand = self.shorthand if other.shorthand is None else (
            other.shorthand if self.shorthand is None else self.shorthand)
        if self.shorthand is not None and other.shorthand is not None and self.shorthand != other.shorthand:
            return None
        return Submodule(self.modules + other.modules, {**self.special_args, **other.special_args}, shorthand,
                         self._description or other._description)


@dataclass(slots=True)
class DeferredModule:
    """The merged value of a `deferredModule` option: its definitions, each a module with its file.

    Python never merges these; they are imported where the module is used (for nodes, the real
    NixOS module system merges `configuration` at build time).
    """

    definitions: list[Definition]

    def modules(self) -> list:
        from .modules import FileModule
        return [FileModule(d.file, d.value) for d in self.definitions]


class DeferredModuleType(OptionType):
    name = "deferredModule"
    description = "module"

    def __init__(self, static_modules: list | None = None):
        self.static_modules = list(static_modules or [])

    def check(self, value: Any) -> bool:
        return _is_module(value)

    def merge(self, loc: tuple, defs: list[Definition]) -> DeferredModule:
        from .location import Loc
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


