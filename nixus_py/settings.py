"""Settings that come from the environment or the command line."""

from __future__ import annotations

import os
from pathlib import Path

from .evaluate.errors import NixusError

_overrides: dict[str, str] = {}


def set_nixpkgs_lib(path: str | None) -> None:
    """Use `path` as the nixpkgs lib (from `--nixpkgs-lib`), overriding NIXUS_NIXPKGS_LIB."""
    if path:
        _overrides["nixpkgs_lib"] = path


def nixpkgs_lib() -> Path:
    """The real nixpkgs `lib` directory: `--nixpkgs-lib` or NIXUS_NIXPKGS_LIB."""
    value = _overrides.get("nixpkgs_lib") or os.environ.get("NIXUS_NIXPKGS_LIB")
    if not value:
        raise NixusError("nixus needs the nixpkgs lib for .nix files: set NIXUS_NIXPKGS_LIB or pass "
                         "--nixpkgs-lib to a directory containing nixpkgs' lib/default.nix")
    path = Path(value).resolve()
    if not (path / "default.nix").exists():
        raise NixusError(f"NIXUS_NIXPKGS_LIB={value}: no default.nix there (expected nixpkgs' lib directory)")
    return path
