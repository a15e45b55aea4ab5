"""fleet.lock.json (values pinned for stability, committed by users) and generated key pairs.

Modules read the lock as `config.lock` and define what it should contain in `config.lockFile`;
key pairs listed in `config.generatedKeys` are created here: the private half in nixus's state
directory (mode 0600, never in the store, the rendered Nix or a command line), the public half
in the lock.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..evaluate.errors import NixusError
from ..settings import make_private, private_dir
from .formats import file_in

LOCK_NAME = "fleet.lock.json"


def lock_path(fleet_file: Path) -> Path:
    return fleet_file.resolve().parent / LOCK_NAME


def read_lock(fleet_file: Path) -> dict[str, Any]:
    """The lock next to the fleet file, or an empty one."""
    path = lock_path(fleet_file)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise NixusError(f"{path}: not a valid lock file: {e}") from None
    if not isinstance(data, dict):
        raise NixusError(f"{path}: not a valid lock file: expected a JSON object")
    return data


def lock_entry(lock: Any, *names: str) -> dict[str, Any]:
    """The object at `names` in the lock ({} where there is none): a lock edited by hand or
    damaged is an error naming the entry, never a crash or a value silently made anew."""
    entry = lock
    for i, name in enumerate(names):
        entry = entry.get(name, {})
        if not isinstance(entry, dict):
            shown = ".".join(f'"{n}"' if "." in n else n for n in names[:i + 1])
            raise NixusError(f"{LOCK_NAME}: {shown} is not an object; correct it, or remove it to have "
                             f"nixus make it anew")
    return entry


def write_lock(fleet_file: Path, data: dict[str, Any]) -> bool:
    """Write the lock atomically when its content changed; True when it did."""
    path = lock_path(fleet_file)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    _atomic_write(path, text.encode(), 0o644)
    return True


def key_file(state_dir: Path, name: str) -> Path:
    """Where the private half of the generated key `name` (e.g. `wireguard/home/web1`) is kept."""
    *dirs, last = name.split("/")
    return file_in(state_dir / "keys", *dirs, f"{last}.key")


def public_keys(state_dir: Path, wanted: dict[str, str], make: bool = True) -> dict[str, str]:
    """The public key of each wanted pair (name: kind), generating the pairs not made yet (only
    those made already, without `make`).

    Every command checks every pair against the lock, and a fleet has one per VPN member, so the
    public halves are kept in keys/public.json, each with the identity of the private key file
    it was derived from (inode, size, change times): a file that is not the same any more, or
    was changed within the last second (too recently to tell, as git's racily clean files), is
    derived again."""
    cache_path = state_dir / "keys" / "public.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    known: dict[str, str] = {}
    changed = False
    for name, kind in wanted.items():
        entry = cache.get(name)
        identity = _identity(key_file(state_dir, name))
        if isinstance(entry, dict) and identity is not None and entry.get("file") == identity and \
                entry.get("kind") == kind and isinstance(entry.get("publicKey"), str):
            known[name] = entry["publicKey"]
            continue
        if not make and identity is None:
            continue
        known[name] = ensure_key(state_dir, name, kind)
        identity = _identity(key_file(state_dir, name))
        if identity is not None and time.time_ns() - identity[-1] > 1_000_000_000:
            cache[name] = {"publicKey": known[name], "kind": kind, "file": identity}
            changed = True
    if changed and make:
        try:
            _atomic_write(cache_path, (json.dumps(cache, sort_keys=True) + "\n").encode(), 0o600)
        except OSError:
            pass  # only a cache: a state directory nixus may not write to is read as before
    return known


def _identity(path: Path) -> list[int] | None:
    """What tells a file from its replacement, or from itself rewritten (None: no such file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def ensure_key(state_dir: Path, name: str, kind: str) -> str:
    """The public key of `name`, generating the pair on first use."""
    if kind != "wireguard":
        raise NixusError(f"generatedKeys.{name}: unknown key kind `{kind}'")
    # Imported here: only a pair made or changed since `public_keys` last saw it needs it.
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
    private_dir(private_dir(state_dir) / "keys")  # narrowed, if an earlier nixus made it wider
    path = key_file(state_dir, name)
    if path.exists():
        raw = base64.b64decode(path.read_text().strip())
        private = X25519PrivateKey.from_private_bytes(raw)
    else:
        private = X25519PrivateKey.generate()
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        _atomic_write(path, base64.b64encode(raw) + b"\n", 0o600)
    return base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    make_private(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
