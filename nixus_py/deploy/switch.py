"""The deployer's side of switch-then-confirm: start the host's switcher, watch its state, and
confirm over a new ssh connection; the host rolls itself back when no confirmation comes."""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .transport import Connection, HostError, Target

SWITCHER = Path(__file__).with_name("switcher.sh")
REMOTE_SWITCHER = "/run/nixus/switcher.sh"
POLL = 0.2


@dataclass
class SwitchOutcome:
    """How a switch ended on the host, in the host's own words."""

    state: str  # committed | rolled-back: <why> | failed: <why> | done: ...
    old: str | None
    log: str

    @property
    def ok(self) -> bool:
        return self.state == "committed" or self.state.startswith("done")


async def start_switch(conn: Connection, deploy_id: str, system: str, goal: str, switch_timeout: int,
                       success_timeout: int) -> str:
    """Upload the switcher and start it detached (setsid) so it outlives this connection."""
    await conn.run("mkdir -p -m 700 /run/nixus", timeout=30)
    await conn.write_file(REMOTE_SWITCHER, SWITCHER.read_bytes(), 0o700)
    args = " ".join(shlex.quote(str(a)) for a in (deploy_id, system, goal, switch_timeout, success_timeout))
    await conn.run(f"setsid -f /bin/sh {REMOTE_SWITCHER} {args} </dev/null >/dev/null 2>&1", timeout=30)
    return f"/run/nixus/deploys/{deploy_id}"


async def read_state(conn: Connection, directory: str) -> str:
    r = await conn.run(f"cat {directory}/state 2>/dev/null || true", timeout=30)
    return r.stdout.strip()


async def wait_for(conn: Connection, directory: str, done: Callable[[str], bool], timeout: float) -> str:
    """Poll the host's switch state until `done(state)` or the time is up (then the last state)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = await read_state(conn, directory)
        if done(state):
            return state
        await asyncio.sleep(POLL)
    return state


def _final(state: str) -> bool:
    return state == "committed" or state.startswith(("rolled-back", "failed", "done"))


async def confirm(target: Target, directory: str) -> Connection | None:
    """Prove the host still lets us in: a NEW connection (never a reused one) creates the
    confirmation file. None when we cannot get in; the host then rolls back by itself."""
    try:
        fresh = await Connection.open(target)
    except HostError:
        return None
    try:
        await fresh.run(f"touch {directory}/confirmed", timeout=10)
    except HostError:
        await fresh.close()
        return None
    return fresh


async def switch(conn: Connection, deploy_id: str, system: str, goal: str, switch_timeout: int,
                 success_timeout: int, on_phase: Callable[[str], None]) -> SwitchOutcome:
    """Activate `system` on the host with the goal's semantics; returns the host's final record."""
    original = conn
    directory = await start_switch(conn, deploy_id, system, goal, switch_timeout, success_timeout)
    on_phase("activating")
    limit = success_timeout + switch_timeout + 30
    state, conn = await _wait(conn, directory, lambda s: s == "activated" or _final(s), switch_timeout + 30)
    if state == "activated":
        on_phase("confirming")
        fresh = await confirm(conn.target, directory)
        # Without confirmation the host rolls back after success_timeout; wait for its verdict.
        state, watcher = await _wait(fresh or conn, directory, _final, limit)
        if fresh is not None and watcher is not fresh:
            await fresh.close()
        conn = watcher
    elif not _final(state):
        state, conn = await _wait(conn, directory, _final, limit)
    record = await conn.run(f"cat {directory}/old 2>/dev/null; echo; cat {directory}/activation.log 2>/dev/null",
                            timeout=30, check=False)
    old, _, log = record.stdout.partition("\n")
    if conn is not original:  # one we opened along the way
        await conn.close()
    return SwitchOutcome(state or "failed: the switcher left no state", old.strip() or None, log)


async def _wait(conn: Connection, directory: str, done: Callable[[str], bool],
                timeout: float) -> tuple[str, Connection]:
    """Wait for a state; when our connection dies (sshd restarted), reconnect and go on. Returns
    the state and the connection that saw it."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        try:
            return await wait_for(conn, directory, done, deadline - time.monotonic()), conn
        except HostError:
            await asyncio.sleep(1)
            try:
                conn = await Connection.open(conn.target)
            except HostError:
                continue
    return state, conn
