"""Copying a closure to a host: ask once which paths it lacks, then send only those, every
path after the paths it refers to (the host's `receive` says how)."""

from __future__ import annotations

from collections.abc import Callable

from .host import CopyStats, Host
from .store import LocalStore


async def copy_closure(host: Host, path: str, progress: Callable[[CopyStats], None],
                       store: LocalStore | None = None, substitute: bool = False) -> CopyStats:
    """Send what the host lacks of `path`'s closure (after it substituted what it could, with
    `substitute`); nothing when it has it all. `store` is the local store's view shared by
    several copies (else one is made for this copy)."""
    infos = (await (store or LocalStore()).load([path])).closure(path)
    lacking = await host.missing([i.path for i in infos], substitute)
    infos = [i for i in infos if i.path in lacking]
    return await host.receive(infos, progress) if infos else CopyStats()
