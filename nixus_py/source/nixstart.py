"""Starting the fleet.nix driver's Nix for a round, and the first round of a command early.

Each round's Nix loads nixpkgs lib and parses the fleet's modules before it reads its input.
For the first round that takes longer than Python takes to import nixus, so the `nixus`
command (launch.py) starts it first thing and the fleet's NixSession takes it over. Standard
library only, to be importable that early.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import subprocess
from pathlib import Path

from ..children import die_with_parent

DRIVER = Path(__file__).parent / "nix" / "driver.nix"

# Whatever a fleet contains, one round's Nix ends: after this many seconds, or when it needs more
# memory than this (a value that never ends, such as a set that contains itself, is serialized
# until one of them stops it).
TIMEOUT = float(os.environ.get("NIXUS_NIX_TIMEOUT") or 300)
MEMORY_MB = int(os.environ.get("NIXUS_NIX_MEMORY_MB") or 4096)

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
                            text=True, preexec_fn=_limits)


def _limits() -> None:
    """In the child, before Nix starts: at most MEMORY_MB of address space, a CPU time after
    which the kernel stops it, and killed with nixus."""
    die_with_parent()
    limit = MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(TIMEOUT) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def _stop_early() -> None:
    for proc in _early.values():
        proc.kill()
        proc.communicate()
    _early.clear()
