"""Module values that are neither dicts, functions nor paths: what the evaluator passes around.

They live apart from modules.py so that the types (submodule.py) and the option tree
(declarations.py) can use them without importing the evaluator itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .location import Loc
from .properties import Definition

if TYPE_CHECKING:
    from .modules import Evaluation


@dataclass(slots=True)
class FileModule:
    """A module value together with the file that defined it (a submodule or deferred definition)."""

    file: Loc
    value: Any
    config_only: bool = False


class ModuleRef:
    """A module that must be produced elsewhere (a Nix function applied by the fleet.nix bridge)."""

    def apply_module(self, ev: Evaluation) -> Any:
        raise NotImplementedError

    def location(self) -> Loc:
        raise NotImplementedError


@dataclass(slots=True)
class DeferredModule:
    """The merged value of a `deferredModule` option: its definitions, each a module with its file.

    Python never merges these; they are imported where the module is used (for nodes, the real
    NixOS module system merges `configuration` at build time).
    """

    definitions: list[Definition]
    special_args: dict[str, Any] = field(default_factory=dict)  # for the evaluation that imports it

    def readable(self) -> Evaluation | None:
        """An evaluation of the part of this module's config that the fleet may read (for a
        node's configuration, what nixus reads of it before NixOS does), if any."""
        return None

    def modules(self) -> list:
        return [FileModule(d.file, d.value) for d in self.definitions]
