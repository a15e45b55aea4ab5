"""A node's settings as data: every option path it sets, each value with its origin and why.

This is what `nixus plan` compares between the last deploy and now, and what the state
records next to the rendered module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..evaluate.errors import show_option
from ..evaluate.modules import ModuleRef
from ..evaluate.properties import Property, force
from ..evaluate.submodule import DeferredModule
from ..nixlang import Annotated, NixValue, to_nix
from .node import origin


class Setting(BaseModel):
    """One value set at an option path: as Nix text, with where it came from and why."""

    value: str
    origin: str
    why: str = ""


NodeSettings = dict[str, list[Setting]]


def node_settings(configuration: DeferredModule, fleet_file: Path) -> NodeSettings:
    """Flatten a node's configuration definitions into option path → settings."""
    base = fleet_file.resolve().parent
    out: NodeSettings = {}
    for d in configuration.definitions:
        _walk(force(d.value), (), origin(d.file, base), "", out)
    return {k: out[k] for k in sorted(out)}


def _walk(value: Any, path: tuple, where: str, why: str, out: NodeSettings) -> None:
    value = force(value)
    if isinstance(value, Annotated):
        _walk(value.value, path, where, value.note, out)
    elif isinstance(value, Mapping) and not isinstance(value, (NixValue, Property)):
        for k in value:
            _walk(value[k], path + (str(k),), where, why, out)
    elif isinstance(value, list):
        for item in value:
            item_why = item.note if isinstance(item, Annotated) else why
            _add(out, path, item, where, item_why)
    elif isinstance(value, ModuleRef) or callable(value) and not isinstance(value, NixValue):
        _add(out, path + (f"<module {where}>",), value, where, why)
    else:
        _add(out, path, value, where, why)


def _add(out: NodeSettings, path: tuple, value: Any, where: str, why: str) -> None:
    try:
        text = to_nix(value.value if isinstance(value, Annotated) else value)
    except Exception:  # noqa: BLE001 - a Python module function renders as its identity
        text = f"<function at {where}>"
    out.setdefault(show_option(path) if path else "<module>", []).append(Setting(value=text, origin=where, why=why))


def settings_json(settings: NodeSettings) -> str:
    return json.dumps({k: [s.model_dump() for s in v] for k, v in settings.items()}, sort_keys=True)


def settings_from_json(text: str) -> NodeSettings:
    data = json.loads(text)
    return {k: [Setting(**s) for s in v] for k, v in data.items()}
