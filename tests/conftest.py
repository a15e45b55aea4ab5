"""Shared test helpers: running the real `nixus` command and finding the nixpkgs lib."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _usable_oracle(source: Path, lib: Path, into: Path) -> Path:
    """benchmarks/common.py's `usable_oracle` (the benchmarks run the same oracle)."""
    spec = importlib.util.spec_from_file_location("nixus_benchmarks_common", ROOT / "benchmarks" / "common.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # (for its dataclasses)
    spec.loader.exec_module(module)
    return module.usable_oracle(source, lib, into)


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


# The whole config less the options of nixus's facts.nix (whose addresses have no default):
# they are read by name.
_WITHOUT_FACTS = ("let c = ev.config; n = removeAttrs c.networking [ \"public\" ]; in "
                  "removeAttrs c [ \"secrets\" \"networking\" ] // (if n == { } then { } else { networking = n; })")


def eval_rendered(module: Path, attr: str = "", with_stderr: bool = False) -> Any:
    """A rendered node module evaluated by the real nixpkgs module system with the testbed OS's
    declarations of the NixOS options: `config.<attr>` as JSON data (and what Nix printed)."""
    from nixus_py.testbed.hosts import TESTBED_OS
    from nixus_py.nixlang import NixPath
    expr = (f"let ev = import {NixPath(f'{TESTBED_OS}/lib/eval-config.nix').nix()} {{ "
            f"lib = import {NixPath(str(nixpkgs_lib())).nix()}; system = \"x86_64-linux\"; "
            f"modules = [ {NixPath(str(module)).nix()} ]; }}; in " + (f"ev.config.{attr}" if attr else _WITHOUT_FACTS))
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return (json.loads(proc.stdout), proc.stderr) if with_stderr else json.loads(proc.stdout)


def nsd_checkzone(tmp_path: Path, zone: str, data: str) -> str:
    """The zone as nsd itself reads it (`nsd-checkzone -p`): the real checker of every zone file."""
    zone_file = tmp_path / f"{zone}.zone"
    zone_file.write_text(data)
    check = subprocess.run([shutil.which("nsd-checkzone") or "nsd-checkzone", "-p", zone, str(zone_file)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return check.stdout


@pytest.fixture(scope="session")
def nixus_oracle(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """What real Nixus computes for a fleet file (`crosshost.nix` of NIXUS_ORACLE): per enabled
    node its authorized keys, known hosts, WireGuard, firewall and NAT; per zone its records.

    The oracle is used from a copy of its own files in a temporary directory, with its stand-in's
    `lib` made a symlink to the nixpkgs lib: the shared copy holds that link as a plain file (a
    checkout that lost its symlinks), which Nix reads as a path."""
    source = os.environ.get("NIXUS_ORACLE")
    if not source or not (Path(source) / "crosshost.nix").is_file():
        pytest.fail("NIXUS_ORACLE is not set to real Nixus's oracle: run the tests through ./scripts/test")
    oracle = _usable_oracle(Path(source), nixpkgs_lib(), tmp_path_factory.mktemp("nixus-oracle"))

    def crosshost(fleet: Path, script: Path | None = None) -> dict:
        """crosshost.nix's answer, or a test's own `script` of Nixus's evaluation (given `oracle`)."""
        args = ["--arg", "oracle", str(oracle)] if script else []
        proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", str(script or oracle / "crosshost.nix"),
                               *args, "--arg", "fleet", str(fleet.resolve())], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    return crosshost


@pytest.fixture(autouse=True, scope="session")
def _require_tools() -> None:
    if shutil.which("nix-instantiate") is None:
        pytest.fail("nix-instantiate is missing: run the tests through ./scripts/test")
    nixpkgs_lib()
