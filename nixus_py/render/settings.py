"""A node's settings as data: every option path it sets, each value with its origin and why.

This is what `nixus plan` compares between the last deploy and now, and what the state
records next to the rendered module. `Setting` is its one schema: a deploy writes plain dicts
of that shape without pydantic (an import that would be a sixth of a deploy with nothing to
do); `plan` checks the recorded ones against the same TypedDict as it reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typing_extensions import NotRequired, TypedDict  # (pydantic reads only these TypedDicts on 3.11)

from ..evaluate.errors import show_option
from ..evaluate.modules import ModuleRef
from ..evaluate.properties import Property, force
from ..evaluate.submodule import DeferredModule
from ..nixlang import Annotated, NixValue, NixWriter
from .node import origin


class Setting(TypedDict):
    """One value set at an option path: as Nix text, with where it came from and why."""

    value: str
    origin: str
    why: NotRequired[str]


NodeSettings = dict[str, list[Setting]]  # option path -> its values


def node_settings(configuration: DeferredModule, fleet_file: Path) -> NodeSettings:
    """Flatten a node's configuration definitions into option path → settings."""
    base = fleet_file.resolve().parent
    flat = _Flattener()
    for d in configuration.definitions:
        flat.walk(force(d.value), (), origin(d.file, base), "")
    return {k: flat.out[k] for k in sorted(flat.out)}


class _Flattener:
    """Collects one node's settings, writing all its values with one writer."""

    def __init__(self) -> None:
        self.out: NodeSettings = {}
        self.writer = NixWriter(indent=None)

    def walk(self, value: Any, path: tuple, where: str, why: str) -> None:
        """Down to the values the plan compares: every scalar, list item and module function."""
        value = force(value)
        if isinstance(value, Annotated):
            self.walk(value.value, path, where, value.note)
        elif isinstance(value, Mapping) and not isinstance(value, (NixValue, Property)):
            for k in value:
                self.walk(value[k], path + (str(k),), where, why)
        elif isinstance(value, list):
            if value:
                self._at(path).extend(self._setting(item, where, item.note if isinstance(item, Annotated) else why)
                                      for item in value)
        elif isinstance(value, ModuleRef) or callable(value) and not isinstance(value, NixValue):
            self._at(path + (f"<module {where}>",)).append(self._setting(value, where, why))
        else:
            self._at(path).append(self._setting(value, where, why))

    def _at(self, path: tuple) -> list[Setting]:
        """The settings at an option path, as the plan names it."""
        return self.out.setdefault(show_option(path) if path else "<module>", [])

    def _setting(self, value: Any, where: str, why: str) -> Setting:
        """One value as the plan shows it, with its origin and why."""
        if callable(value) and not isinstance(value, NixValue):
            text = "<function>"  # a Python module function: the plan compares its settings instead
        else:
            try:
                text = self.writer.text(value)
            except Exception:  # noqa: BLE001 - a value with no Nix form renders as its identity
                text = f"<function at {where}>"
        return {"value": text, "origin": where, "why": why}


def settings_json(settings: NodeSettings) -> str:
    return json.dumps(settings, sort_keys=True)
