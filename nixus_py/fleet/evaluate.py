"""Evaluating a fleet file (fleet.py or fleet.nix) into one lazy module-system evaluation."""

from __future__ import annotations

import os
from pathlib import Path

from ..evaluate.errors import NixusError
from ..evaluate.location import Loc
from ..evaluate.modules import ConfigProxy, Evaluation
from ..source.nixfile import NixSession, evaluate_with_nix
from .core import fleet_module

DEFAULT_FILES = ("fleet.py", "fleet.nix")
# The bundled cross-host modules: ordinary modules, loaded like a user's (NIXUS_MODULES_DIR overrides).
BUNDLED = Path(os.environ.get("NIXUS_MODULES_DIR") or Path(__file__).resolve().parents[2] / "modules")


def bundled_modules() -> list[str]:
    """Paths of the bundled modules (`modules/*.py`), in a stable order."""
    return sorted(str(p) for p in BUNDLED.glob("*.py"))


def find_fleet_file(path: str | Path | None) -> Path:
    """The fleet file: the one given, else ./fleet.py, else ./fleet.nix."""
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise NixusError(f"fleet file {p} does not exist")
        return p
    for name in DEFAULT_FILES:
        if Path(name).exists():
            return Path(name)
    raise NixusError("no fleet file: pass -f FILE, or run where fleet.py or fleet.nix is")


def evaluate_fleet(path: str | Path | None = None, extra_modules: list | None = None) -> Evaluation:
    """The evaluated fleet; values are computed when read (fleet.nix settles in a few Nix rounds)."""
    file = find_fleet_file(path)

    def make() -> Evaluation:
        modules = [fleet_module, *bundled_modules(), *(extra_modules or []), str(file)]
        ev = Evaluation(modules, file=Loc(str(file)))
        ev.special_args["nodes"] = ConfigProxy(ev, ("nodes",))
        return ev

    if file.suffix == ".nix":
        session = NixSession()
        session.files.append(str(file.resolve()))
        session.dirty = True
        return evaluate_with_nix(make, session)
    return make()
