"""Copying a closure to a host: ask once which paths it lacks, then stream only those.

The paths go as one `nix-store --export` stream into `nix-store --import` on the host, over the
host's existing ssh connection: one round trip to learn what is missing, none per path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .transport import Connection, HostError

CHUNK = 1 << 18


@dataclass
class CopyStats:
    paths: int = 0
    bytes: int = 0


async def closure(path: str) -> list[str]:
    """The local closure of `path`, dependencies first (as `nix-store -qR` sorts it)."""
    proc = await asyncio.create_subprocess_exec("nix-store", "-qR", path, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise HostError(f"cannot read the closure of {path}: {err.decode().strip()}")
    return out.decode().split()


async def missing_paths(conn: Connection, paths: list[str]) -> list[str]:
    """Which of `paths` the host's store lacks, in one command (paths go on stdin)."""
    if not paths:
        return []
    r = await conn.run("xargs -r nix-store --check-validity --print-invalid", input="\n".join(paths) + "\n",
                       timeout=120)
    invalid = set(r.stdout.split())
    return [p for p in paths if p in invalid]


async def copy_closure(conn: Connection, path: str, progress: Callable[[CopyStats], None]) -> CopyStats:
    """Send what the host lacks of `path`'s closure; nothing when it has it all."""
    stats = CopyStats()
    missing = await missing_paths(conn, await closure(path))
    if not missing:
        return stats
    export = await asyncio.create_subprocess_exec("nix-store", "--export", *missing, stdout=asyncio.subprocess.PIPE,
                                                  stderr=asyncio.subprocess.PIPE)
    assert export.stdout is not None

    async def chunk() -> bytes:
        return await export.stdout.read(CHUNK)  # type: ignore[union-attr]

    def sent(n: int) -> None:
        stats.bytes += n
        progress(stats)

    result = await conn.feed("nix-store --import", chunk, sent)
    _, err = await export.communicate()
    if export.returncode != 0:
        raise HostError(f"{conn.target.node}: nix-store --export failed: {err.decode().strip()[-500:]}")
    if result.code != 0:
        raise HostError(f"{conn.target.node}: nix-store --import failed: {result.stderr.strip()[-500:]}")
    stats.paths = len(missing)
    progress(stats)
    return stats
