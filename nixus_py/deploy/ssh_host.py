"""A `Host` over ssh: one asyncssh connection (transport.py) for all of a deploy's commands, Nix's
serve protocol (serve.py) for the store paths, sftp for the secrets, and new connections where
the switch needs them: to confirm, and to follow it again after sshd dropped us."""

from __future__ import annotations

import asyncio
import math
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from .host import CopyStats, HostError, HostKeyMismatch, Result, Systems, Unreachable
from .secrets import REMOTE_DIR, Secret, stage
from .serve import Serve
from .store import PathInfo
from .switch import SWITCHER, SwitchReport, SwitchRequest
from .transport import CONNECT_TIMEOUT, Connection, Target

RECONNECT_PAUSE = 1.0  # seconds between attempts to get back to a host that dropped us
CONFIRM_RETRY = 0.2  # seconds between attempts to confirm while the host's sshd does not answer


class SshHost:
    """A host reached over ssh, with strict host-key checking (see transport.py)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.node = conn.target.node
        self._serve: Serve | None = None  # asked which paths it lacks, to be sent them
        self._following = conn  # the connection that follows the switch
        self._opened: list[Connection] = []  # for the switch: closed with the host

    @classmethod
    async def open(cls, target: Target) -> SshHost:
        return cls(await Connection.open(target))

    async def systems(self, new: str) -> Systems:
        probe = await self.conn.run(  # (`read` rather than `cat`: one process less on the host)
            f'f=; {{ read -r f < {shlex.quote(f"{REMOTE_DIR}/{Path(new).name}/fingerprint")}; }} 2>/dev/null; '
            'printf "%s\\n" "$(readlink -e /run/current-system)" "$(readlink -e /nix/var/nix/profiles/system)" "$f"',
            timeout=30)
        current, boot, staged = (probe.stdout.split("\n") + ["", "", ""])[:3]
        return Systems(current or None, boot or None, staged)

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

    async def stage_secrets(self, system: str, secrets: list[Secret]) -> None:
        await stage(self.conn, system, secrets)

    async def start_switch(self, request: SwitchRequest, report: SwitchReport) -> None:
        self._following = await self._follow(self.conn, request.start(), request.watch("activated"), report,
                                             request.activation_limit, input=SWITCHER.read_text())

    async def confirm(self, request: SwitchRequest, report: SwitchReport) -> None:
        fresh = await self._fresh(request.success_timeout)
        if fresh is not None:  # confirm, and hear the end over the same new connection
            self._opened.append(fresh)
            self._following = await self._follow(fresh, request.confirm(), request.watch("final"), report,
                                                 request.limit)

    async def follow(self, request: SwitchRequest, report: SwitchReport) -> None:
        watch = request.watch("final")
        self._following = await self._follow(self._following, f"{watch} {request.limit}", watch, report,
                                             request.limit)

    async def run(self, command: str, timeout: float = 60.0, check: bool = True) -> Result:
        return await self.conn.run(command, timeout=timeout, check=check)

    async def close(self) -> None:
        for conn in (*self._opened, self.conn):
            await conn.close()

    async def _fresh(self, seconds: float) -> Connection | None:
        """A NEW connection to the host (never a reused one): proof that the new system still
        lets us in. Tried until `seconds` pass, as sshd may be restarting just then; None when it
        does not let us in (or presents another host key)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                return await Connection.open(self.conn.target, timeout=max(1.0, min(CONNECT_TIMEOUT, left)))
            except HostKeyMismatch:
                return None
            except HostError:
                if time.monotonic() + CONFIRM_RETRY >= deadline:
                    return None
                await asyncio.sleep(CONFIRM_RETRY)

    async def _follow(self, conn: Connection, command: str, again: str, report: SwitchReport, seconds: float,
                      input: str = "") -> Connection:
        """Run `command`, feeding its lines to `report`, until it ends or `seconds` pass. When the
        connection drops (an sshd restart), reconnect and run `again` (given the seconds left)
        instead. Returns the connection that heard the end."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return conn
            try:
                result = await conn.stream(command, report.line, input=input, timeout=left + 5)
            except Unreachable:
                result = None
            if result is not None:
                if result.code != 0 and report.state is None:
                    raise HostError(f"{self.node}: cannot start the switcher ({result.code}): "
                                    f"{result.stderr.strip()[-500:]}")
                return conn
            while time.monotonic() < deadline:
                await asyncio.sleep(RECONNECT_PAUSE)
                try:
                    conn = await Connection.open(conn.target)
                except HostError:
                    continue
                self._opened.append(conn)
                break
            command, input = f"{again} {math.ceil(deadline - time.monotonic())}", ""
