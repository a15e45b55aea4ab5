"""Settings that come from the environment or the command line."""

from __future__ import annotations

import os
from pathlib import Path

from .evaluate.errors import NixusError

_overrides: dict[str, str] = {}
# The bundled cross-host modules: ordinary modules, loaded like a user's (NIXUS_MODULES_DIR overrides).
BUNDLED = Path(os.environ.get("NIXUS_MODULES_DIR") or Path(__file__).resolve().parents[1] / "modules")
# The testbed OS's `nixos` directory: the test hosts boot it, and builds trust its content (their
# cache keys hash it), so build finds it here rather than by importing the testbed.
TESTBED_OS = Path(__file__).resolve().parent / "testbed" / "os" / "nixos"


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


def set_state_dir(path: str | None) -> None:
    """Use `path` as nixus's state directory (from `--state-dir`), overriding NIXUS_STATE_DIR."""
    if path:
        _overrides["state_dir"] = path


def state_dir(fleet_file: Path) -> Path:
    """nixus's local state (generated keys, deploy records): `--state-dir`, NIXUS_STATE_DIR, or
    `.nixus-state` next to the fleet file."""
    value = _overrides.get("state_dir") or os.environ.get("NIXUS_STATE_DIR")
    return Path(value).resolve() if value else fleet_file.resolve().parent / ".nixus-state"


def private_dir(path: Path) -> Path:
    """`path` as a directory that only its owner may enter: what is below it (generated private
    keys, every rendered module and activation log in the records) needs no mode of its own.
    One made wider by an earlier nixus is narrowed."""
    try:
        make_private(path)
        st = path.stat()
    except OSError as e:
        raise NixusError(f"cannot use {path} as nixus's state directory: {e.strerror} (set --state-dir or "
                         "NIXUS_STATE_DIR to a directory nixus can write)") from None
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o700)
    return path


def make_private(path: Path) -> None:
    """Make the directory `path` and those missing above it, each 0700 (`mkdir(parents=True)`
    gives the ones above the umask's mode, 0755 as a rule)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
