"""A `Host` over ssh: one asyncssh connection (transport.py) for all of a deploy's commands, Nix's
serve protocol (serve.py) for the store paths, sftp for the secrets, and new connections where
the switch needs them: to confirm, and to follow it again after sshd dropped us."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .host import CopyStats, HostError, HostKeyMismatch
from .serve import Serve
from .shell_host import ShellHost
from .store import PathInfo
from .switch import SwitchReport, SwitchRequest
from .transport import CONNECT_TIMEOUT, Connection, Target

RECONNECT_PAUSE = 1.0  # seconds between attempts to get back to a host that dropped us
CONFIRM_RETRY = 0.2  # seconds between attempts to confirm while the host's sshd does not answer


class SshHost(ShellHost):
    """A host reached over ssh, with strict host-key checking (see transport.py)."""

    def __init__(self, conn: Connection):
        super().__init__(conn)
        self.conn = conn
        self._serve: Serve | None = None  # asked which paths it lacks, to be sent them

    @classmethod
    async def open(cls, target: Target) -> SshHost:
        return cls(await Connection.open(target))

    async def missing(self, paths: list[str], substitute: bool) -> set[str]:
        self.conn.sftp_session()  # for the secrets, which follow the paths: it starts meanwhile
        serve = await Serve.open(self.conn)
        lacking = set(paths) - await serve.valid(paths, substitute)
        if lacking:
            self._serve = serve  # the same session takes the paths
        else:
            await serve.close()
        return lacking

    async def receive(self, paths: list[PathInfo], progress: Callable[[CopyStats], None]) -> CopyStats:
        serve, self._serve = self._serve or await Serve.open(self.conn), None
        return await serve.add(paths, progress)

    async def confirm(self, request: SwitchRequest, report: SwitchReport) -> None:
        fresh = await self._fresh(request.success_timeout, report)
        if fresh is not None:  # confirm, and hear the end over the same new connection
            self._opened.append(fresh)
            self._following = await self._follow(fresh, request.confirm(), request.watch("final"), report,
                                                 request.limit)

    async def _fresh(self, seconds: float, report: SwitchReport) -> Connection | None:
        """A NEW connection to the host (never a reused one): proof that the new system still
        lets us in. Tried until `seconds` pass, as sshd may be restarting just then; None when it
        does not let us in (or presents another host key)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                return await Connection.open(self.conn.target, timeout=max(1.0, min(CONNECT_TIMEOUT, left)))
            except HostKeyMismatch as e:  # (said in the switch's outcome: it rolls back unconfirmed)
                report.note = f"the confirming connection was refused: {e}"
                return None
            except HostError:
                if time.monotonic() + CONFIRM_RETRY >= deadline:
                    return None
                await asyncio.sleep(CONFIRM_RETRY)

    async def _reconnect(self, deadline: float) -> Connection | None:
        while time.monotonic() < deadline:
            await asyncio.sleep(RECONNECT_PAUSE)
            try:
                return await Connection.open(self.conn.target)
            except HostError:
                continue
        return None
