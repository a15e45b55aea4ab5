"""Starting the fleet.nix driver's Nix for a round, and the first round of a command early.

Each round's Nix loads nixpkgs lib and parses the fleet's modules before it reads its input.
For the first round that takes longer than Python takes to import nixus, so the `nixus`
command (launch.py) starts it first thing and the fleet's NixSession takes it over. Standard
library only, to be importable that early.
"""

from __future__ import annotations

import atexit
import json
import subprocess
from pathlib import Path

DRIVER = Path(__file__).parent / "nix" / "driver.nix"

_early: dict[tuple[str, ...], subprocess.Popen] = {}


def round_command(files: list[str], lib: Path) -> list[str]:
    """nix-instantiate of the driver, preloading `files` with the nixpkgs lib at `lib`."""
    # Read-write mode, as `nix eval`: modules may be imported from the store (builtins.toFile,
    # fetched sources), which read-only evaluation cannot read back.
    return ["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", str(DRIVER),
            "--argstr", "libPath", str(lib), "--argstr", "inputFile", "/dev/stdin",
            "--argstr", "preload", json.dumps(files)]


def start(command: list[str]) -> subprocess.Popen:
    """The Nix for a round: the one started early for this same command, else a new one."""
    return _early.pop(tuple(command), None) or _popen(command)


def start_early(fleet: Path, lib: Path) -> None:
    """Start the first round for `fleet` now; stopped at exit unless a NixSession took it."""
    if not _early:
        atexit.register(_stop_early)
    command = round_command([str(fleet.resolve())], lib.resolve())
    _early[tuple(command)] = _popen(command)


def _popen(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _stop_early() -> None:
    for proc in _early.values():
        proc.kill()
        proc.communicate()
    _early.clear()
