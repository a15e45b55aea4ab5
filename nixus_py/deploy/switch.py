"""The deployer's side of switch-then-confirm: start the host's switcher, follow its states as
the host reports them, and confirm over a new ssh connection; the host rolls itself back when
no confirmation comes.

One command starts the switcher and follows it until the new system is active; one command on
the confirming connection confirms and follows it to the end. No polling from here.
"""

from __future__ import annotations

import asyncio
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .transport import CONNECT_TIMEOUT, Connection, HostError, HostKeyMismatch, Unreachable

SWITCHER = Path(__file__).with_name("switcher.sh")
REMOTE_SWITCHER = "/run/nixus/switcher.sh"
RECONNECT_PAUSE = 1.0  # seconds between attempts to get back to a host that dropped us
CONFIRM_RETRY = 0.2  # seconds between attempts to confirm while the host's sshd does not answer
FINAL = ("committed", "rolled-back", "failed", "done")


@dataclass
class SwitchOutcome:
    """How a switch ended on the host, in the host's own words."""

    state: str  # committed | rolled-back: <why> | failed: <why> | done: ...
    old: str | None
    log: str

    @property
    def ok(self) -> bool:
        return self.state == "committed" or self.state.startswith("done")


@dataclass
class _Report:
    """What the host's `switcher.sh watch` has said so far: states, then the final record."""

    on_phase: Callable[[str], None]
    state: str = ""
    old: str | None = None
    log: list[str] = field(default_factory=list)
    in_log: bool = False

    @property
    def final(self) -> bool:
        return self.state.startswith(FINAL)

    def line(self, text: str) -> None:
        if self.in_log:
            self.log.append(text)
        elif text == "log":
            self.in_log = True
        elif text.startswith("old "):
            self.old = text[4:].strip() or None
        elif text.startswith("state ") and text[6:] != self.state:
            self.state = text[6:]
            if self.state in ("activating", "activated") or self.state.startswith("rolling-back"):
                self.on_phase(self.state.split(":")[0])


async def switch(conn: Connection, deploy_id: str, system: str, goal: str, switch_timeout: int,
                 success_timeout: int, on_phase: Callable[[str], None]) -> SwitchOutcome:
    """Activate `system` on the host with the goal's semantics; returns the host's final record."""
    report = _Report(on_phase)
    args = " ".join(shlex.quote(str(a)) for a in (deploy_id, system, goal, switch_timeout, success_timeout))
    switcher = f'exec "$(command -v bash || echo /bin/sh)" {REMOTE_SWITCHER}'
    start = (f"mkdir -p -m 700 /run/nixus && cat > {REMOTE_SWITCHER}.new && "
             f"mv -f {REMOTE_SWITCHER}.new {REMOTE_SWITCHER} && {switcher} start {args}")
    watch = f"{switcher} watch {shlex.quote(deploy_id)}"
    opened: list[Connection] = []
    try:
        conn = await _follow(conn, start, f"{watch} activated", report, switch_timeout + 30, opened,
                             input=SWITCHER.read_text())
        limit = success_timeout + switch_timeout + 30
        if report.state == "activated":
            on_phase("confirming")
            fresh = await _fresh(conn, success_timeout)
            if fresh is not None:  # confirm, and hear the end over the same new connection
                opened.append(fresh)
                conn = await _follow(fresh, f"{switcher} confirm {shlex.quote(deploy_id)} {limit}", f"{watch} final",
                                     report, limit, opened)
        if not report.final:  # not confirmed (the host rolls back by itself), or the switch went wrong
            await _follow(conn, f"{watch} final {limit}", f"{watch} final", report, limit, opened)
    finally:
        for c in opened:
            await c.close()
    return SwitchOutcome(report.state or "failed: the switcher left no state", report.old, "\n".join(report.log))


async def _fresh(conn: Connection, seconds: float) -> Connection | None:
    """A NEW connection to the host (never a reused one): proof that the new system still lets
    us in. Tried until `seconds` pass, as sshd may be restarting just then; None when it does
    not let us in (or presents another host key)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        try:
            return await Connection.open(conn.target, timeout=max(1.0, min(CONNECT_TIMEOUT, left)))
        except HostKeyMismatch:
            return None
        except HostError:
            if time.monotonic() + CONFIRM_RETRY >= deadline:
                return None
            await asyncio.sleep(CONFIRM_RETRY)


async def _follow(conn: Connection, command: str, again: str, report: _Report, seconds: float,
                  opened: list[Connection], input: str = "") -> Connection:
    """Run `command`, feeding its lines to `report`, until it ends or `seconds` pass. When the
    connection drops (an sshd restart), reconnect and run `again` (given the seconds left) instead.
    Returns the connection that heard the end."""
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
            if result.code != 0 and not report.state:
                raise HostError(f"{conn.target.node}: cannot start the switcher ({result.code}): "
                                f"{result.stderr.strip()[-500:]}")
            return conn
        while time.monotonic() < deadline:
            await asyncio.sleep(RECONNECT_PAUSE)
            try:
                conn = await Connection.open(conn.target)
            except HostError:
                continue
            opened.append(conn)
            break
        command, input = f"{again} {math.ceil(deadline - time.monotonic())}", ""
