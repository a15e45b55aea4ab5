"""Shared test helpers: running the real `nixus` command and finding the nixpkgs lib."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def nixpkgs_lib() -> Path:
    value = os.environ.get("NIXUS_NIXPKGS_LIB")
    if not value:
        pytest.fail("NIXUS_NIXPKGS_LIB is not set: run the tests through ./scripts/test")
    return Path(value)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example fleet, so its lock file and state land in the test's directory."""
    target = tmp_path / "examples"
    target.mkdir()
    for name in ("fleet.py", "fleet.nix"):
        shutil.copy(EXAMPLES / name, target / name)
    return target


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_nixus(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the installed `nixus` CLI as a user would."""
    exe = shutil.which("nixus") or str(Path(sys.executable).parent / "nixus")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout, proc.stderr)


def eval_rendered(module: Path, attr: str = "", with_stderr: bool = False) -> Any:
    """A rendered node module evaluated by the real nixpkgs module system with the testbed OS's
    declarations of the NixOS options: `config.<attr>` as JSON data (and what Nix printed)."""
    import json
    from nixus_py.testbed.hosts import TESTBED_OS
    from nixus_py.nixlang import NixPath
    expr = (f"let ev = import {NixPath(f'{TESTBED_OS}/lib/eval-config.nix').nix()} {{ "
            f"lib = import {NixPath(str(nixpkgs_lib())).nix()}; system = \"x86_64-linux\"; "
            f"modules = [ {NixPath(str(module)).nix()} ]; }}; in ev.config" + (f".{attr}" if attr else ""))
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return (json.loads(proc.stdout), proc.stderr) if with_stderr else json.loads(proc.stdout)


@pytest.fixture(autouse=True, scope="session")
def _require_tools() -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.fail("nix-instantiate is missing: run the tests through ./scripts/test")
    nixpkgs_lib()
