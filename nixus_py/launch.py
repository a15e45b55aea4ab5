"""The `nixus` command: the CLI, after starting a fleet.nix's first Nix round.

That round (nixpkgs lib and the fleet's modules) takes Nix longer than Python takes to load
nixus, so it starts before the CLI is imported; the fleet's NixSession takes it over
(source/nixstart.py). Only the standard library is loaded before it starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    fleet = _fleet_nix(sys.argv[1:])
    lib = os.environ.get("NIXUS_NIXPKGS_LIB")
    if fleet is not None and lib and "--nixpkgs-lib" not in sys.argv:
        from .source.nixstart import start_early
        try:
            start_early(fleet, Path(lib))
        except OSError:  # no nix-instantiate, say: the CLI says so when it needs one
            pass
    from .cli import main as cli_main
    cli_main()


def _fleet_nix(args: list[str]) -> Path | None:
    """The fleet.nix these arguments evaluate: -f FILE, else ./fleet.nix where there is no
    ./fleet.py. The CLI decides (fleet.evaluate.find_fleet_file); a wrong guess only starts a
    Nix that nobody takes, stopped at exit."""
    path = None
    for i, arg in enumerate(args):
        if arg in ("-f", "--file") and i + 1 < len(args):
            path = Path(args[i + 1])
        elif arg.startswith("--file="):
            path = Path(arg[len("--file="):])
    if path is None and not Path("fleet.py").exists():
        path = Path("fleet.nix")
    return path if path is not None and path.suffix == ".nix" and path.is_file() else None
