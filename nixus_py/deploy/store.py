"""What the local Nix store knows of the closures a deploy copies: every path's hash, size,
deriver and references, asked once for all hosts."""

from __future__ import annotations

import asyncio
import graphlib
from dataclasses import dataclass

from .host import HostError


@dataclass(frozen=True)
class PathInfo:
    """What the local Nix database knows of a store path, as the host must register it."""

    path: str
    nar_hash: str  # sha256, base16
    nar_size: int
    deriver: str
    references: tuple[str, ...]


async def _nix_store(*args: str, what: str) -> bytes:
    """The output of a local `nix-store` query; `what` names it in the error."""
    proc = await asyncio.create_subprocess_exec("nix-store", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise HostError(f"cannot read {what}: {err.decode().strip()[-500:]}")
    return out


async def path_infos(paths: list[str]) -> dict[str, PathInfo]:
    """Hash, size, deriver and references of each path, from one `nix-store --dump-db`."""
    lines = (await _nix_store("--dump-db", *paths, what=f"the store database entries of {len(paths)} paths")
             ).decode().split("\n")
    infos = {}
    i = 0
    while i + 4 < len(lines) and lines[i]:  # path, hash, size, deriver, count, then the references
        count = int(lines[i + 4])
        infos[lines[i]] = PathInfo(lines[i], lines[i + 1], int(lines[i + 2]), lines[i + 3],
                                   tuple(lines[i + 5:i + 5 + count]))
        i += 5 + count
    return infos


class LocalStore:
    """What the local Nix database knows of the closures to copy: asked once for the roots of
    every host (two Nix calls in all), not once per host."""

    def __init__(self) -> None:
        self.infos: dict[str, PathInfo] = {}

    async def load(self, roots: list[str]) -> LocalStore:
        """Learn the closures of `roots` (those not known yet)."""
        new = [r for r in roots if r not in self.infos]
        if new:
            paths = (await _nix_store("-qR", *new, what=f"the closures of {len(new)} paths")).decode().split()
            self.infos.update(await path_infos([p for p in paths if p not in self.infos]))
        return self

    def closure(self, root: str) -> list[PathInfo]:
        """The closure of a loaded root, every path after the paths it refers to."""
        refs: dict[str, set[str]] = {}
        todo = [root]
        while todo:
            path = todo.pop()
            if path not in refs:
                refs[path] = set(self.infos[path].references) - {path}
                todo.extend(refs[path])
        return [self.infos[p] for p in graphlib.TopologicalSorter(refs).static_order()]
