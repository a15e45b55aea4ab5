"""`nixus deploy`: build, then per host copy → secrets → switch-then-confirm → record.

At most `parallel` hosts are in flight. A host that must deploy after others (`nixus graph`)
gets its system and secrets onto the host meanwhile and waits for them only before it
switches; no host waits for any other. A host that fails fails alone: without --keep-going no
more hosts start, but those in flight go on. Ctrl-C also stops hosts that have not begun to
switch, and lets the ones already switching finish or roll back.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import os
import shlex
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from ..build.nodes import NodeBuild, build_nodes
from ..evaluate.errors import NixusError
from ..fleet.formats import node_file
from ..fleet.evaluate import Fleet
from ..fleet.graph import deploy_order
from ..interrupts import on_interrupt
from ..record.state import State, StateError
from ..render.node import render_node
from ..render.settings import node_settings, settings_json
from ..settings import private_dir
from .copy import CopyStats, LocalStore, copy_closure
from .secrets import REMOTE_DIR, Secret, fingerprint, node_secrets, stage
from .switch import switch
from .targets import target_for
from .transport import Connection, Unreachable

Goal = Literal["switch", "boot", "test", "dry-activate"]
Outcome = Literal["switched", "unchanged", "rolled-back", "failed", "unreachable", "skipped", "dry-run"]
GOOD = ("switched", "unchanged", "dry-run")
INTERRUPTED = "interrupted"


@dataclass
class HostResult:
    node: str
    outcome: Outcome = "skipped"
    message: str = ""
    old_path: str | None = None
    new_path: str | None = None
    copied_paths: int = 0
    copied_bytes: int = 0
    started: float = field(default_factory=time.time)
    duration: float = 0.0
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in GOOD


Progress = Callable[[str, str, str], None]  # (node, phase, detail)


@contextmanager
def deploy_lock(state_dir: Path) -> Iterator[None]:
    """One deploy of a fleet at a time: a second one stops and names the first."""
    path = private_dir(state_dir) / "deploy.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise NixusError(f"another nixus deploy of this fleet is running ({holder}); wait for it "
                             "to finish") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, {getpass.getuser()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def git_revision(directory: Path) -> tuple[str | None, bool | None]:
    """The fleet's git commit and whether the work tree has changes (None outside git)."""
    rev = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True)
    if rev.returncode != 0:
        return None, None
    dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain"], capture_output=True, text=True)
    return rev.stdout.strip(), bool(dirty.stdout.strip())


class Deployment:
    """One run of `nixus deploy` over the selected nodes."""

    def __init__(self, fleet: Fleet, nodes: list[str], goal: Goal, parallel: int, keep_going: bool,
                 dry_run: bool, progress: Progress):
        self.fleet, self.nodes, self.goal = fleet, nodes, goal
        self.parallel, self.keep_going, self.dry_run = parallel, keep_going, dry_run
        self.progress = progress
        self.results = {n: HostResult(n) for n in nodes}
        self.stopped: str | None = None  # why no more hosts start switching
        self.unrecorded: str | None = None  # why a host's record could not be written
        self.systems: list[str] = []  # built here, to be copied
        self.local: asyncio.Future[LocalStore] | None = None
        self.id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        # Every target (and jump host) is checked before any host is touched.
        self.targets = {n: target_for(fleet, n) for n in nodes}

    def run(self) -> list[HostResult]:
        with deploy_lock(self.fleet.state_dir):
            return asyncio.run(self._run())

    async def _run(self) -> list[HostResult]:
        loop = asyncio.get_running_loop()
        with on_interrupt(lambda: loop.call_soon_threadsafe(self._stop, INTERRUPTED)):
            return await self._hosts()

    async def _hosts(self) -> list[HostResult]:
        order = deploy_order(self.fleet)
        # Hosts connect while the systems build: a handshake mostly waits for the host.
        builds = asyncio.ensure_future(self._build())
        state = self.state = State(self.fleet.state_dir)
        state.check()  # the record must be writable before any host changes
        rev, dirty = git_revision(self.fleet.file.parent)
        self.deploy_id = state.begin_deploy(self.fleet.file, self.goal, rev, dirty)
        settled = {n: asyncio.Event() for n in self.nodes}
        slots = asyncio.Semaphore(self.parallel)
        await asyncio.gather(*(self._host(n, builds, [settled[b] for b in sorted(order[n]) if b in settled],
                                          settled[n], slots) for n in self.nodes))
        if self.unrecorded is None:
            state.finish_deploy(self.deploy_id)
        return [self.results[n] for n in self.nodes]

    async def _build(self) -> dict[str, NodeBuild]:
        """Every selected node's system, built here (in a thread: the hosts connect meanwhile)."""
        builds = await asyncio.to_thread(build_nodes, self.fleet, self.nodes,
                                         lambda n, p: self.progress(n, p, ""), self.parallel, sizes=False)
        self.systems = [b.out for b in builds if b.out and self.fleet.config["nodes"][b.node]["buildOn"] != "target"]
        return {b.node: b for b in builds}

    def _stop(self, why: str) -> None:
        """Start no more hosts; when interrupted, also switch no more of those not switching yet."""
        self.stopped = why if why == INTERRUPTED else self.stopped or why

    async def _host(self, node: str, builds: asyncio.Future[dict[str, NodeBuild]], before: list[asyncio.Event],
                    settled: asyncio.Event, slots: asyncio.Semaphore) -> None:
        r = self.results[node]
        try:
            await self._deploy_host(r, builds, before, slots)
        except Unreachable as e:
            r.outcome, r.message = "unreachable", str(e)
        except NixusError as e:  # includes a wrong host key: refused before anything is sent
            r.outcome, r.message = "failed", str(e)
        finally:
            settled.set()
        r.duration = time.time() - r.started
        self._keep_record(r)
        self.progress(node, r.outcome, r.message.splitlines()[0] if r.message else "")
        if r.outcome not in GOOD + ("skipped",) and not self.keep_going:
            self._stop("an earlier host failed")

    def _keep_record(self, r: HostResult) -> None:
        """The host's record, written as soon as it has settled (a deployer that dies later keeps
        it); when it cannot be written, no further host starts."""
        if r.outcome == "skipped" and not r.message:
            return
        try:
            self._record(self.state, self.deploy_id, r)
        except (StateError, sqlite3.Error) as e:
            self.unrecorded = str(e)
            r.message += f" (not recorded: {e})"
            self._stop("the state database cannot be written")

    async def _deploy_host(self, r: HostResult, builds: asyncio.Future[dict[str, NodeBuild]],
                           before: list[asyncio.Event], slots: asyncio.Semaphore) -> None:
        """Connect, check, copy and stage; then, once the hosts it comes after have settled, switch.
        The host holds one of the `parallel` slots throughout, except while it waits for those."""
        async with slots:
            if self.stopped:
                r.message = f"not started: {self.stopped}"
                return
            r.started = time.time()
            target = self.targets[r.node]
            self.progress(r.node, "connecting", target.describe())
            connecting = asyncio.ensure_future(Connection.open(target))
            try:
                build = (await builds)[r.node]
                if not build.ok:
                    raise NixusError(f"build failed: {build.error}")
            except BaseException:
                await _discard(connecting)
                raise
            node = self.fleet.config["nodes"][r.node]
            r.new_path = build.out
            secrets = node_secrets(r.node, node, self.fleet.state_dir, self.fleet.file.parent)
            conn = await connecting
            try:
                if not await self._prepare(r, conn, build, secrets, node):
                    return
                if not all(e.is_set() for e in before):
                    self.progress(r.node, "waiting", "for the hosts it deploys after")
                    slots.release()
                    try:
                        await asyncio.gather(*(e.wait() for e in before))
                    finally:
                        await slots.acquire()
                if self.stopped == INTERRUPTED:  # a failure elsewhere does not stop hosts in flight
                    r.message = f"copied, not switched: {self.stopped}"
                    return
                await self._switch(r, conn, node)
            finally:
                await conn.close()

    async def _prepare(self, r: HostResult, conn: Connection, build: NodeBuild, secrets: list[Secret],
                       node: Any) -> bool:
        """Get the system and its secrets onto the host; False when there is nothing to switch."""
        system = build.out or ""
        probe = await conn.run(  # (`read` rather than `cat`: one process less on the host)
            f'f=; {{ read -r f < {shlex.quote(f"{REMOTE_DIR}/{Path(system).name}/fingerprint")}; }} 2>/dev/null; '
            'printf "%s\\n" "$(readlink -e /run/current-system)" "$(readlink -e /nix/var/nix/profiles/system)" "$f"',
            timeout=30)
        current, profile, staged = (probe.stdout.split("\n") + ["", "", ""])[:3]
        r.old_path = current or None
        if (self.goal in ("switch", "test") and current == system and staged == fingerprint(secrets)
                and (self.goal == "test" or profile == system)):
            r.outcome, r.message = "unchanged", "already running this system"
            return False
        if not self.dry_run:
            conn.sftp_session()  # for the secrets: it starts while the system is copied

        def copied(stats: CopyStats) -> None:
            r.copied_paths, r.copied_bytes = stats.paths, stats.bytes
            self.progress(r.node, "copying", f"{stats.bytes / 1e6:.1f} MB")

        await self._provide(r, conn, system, build, node, copied)
        if self.dry_run:
            r.outcome, r.message = "dry-run", f"copied {r.copied_paths} paths; not switched (--dry-run)"
            return False
        await stage(conn, system, secrets)
        return True

    async def _switch(self, r: HostResult, conn: Connection, node: Any) -> None:
        outcome = await switch(conn, self.id, r.new_path or "", self.goal, node["switchTimeout"],
                               node["successTimeout"], lambda phase: self.progress(r.node, phase, ""))
        r.log = outcome.log
        if outcome.ok:
            r.outcome = "switched" if self.goal != "dry-activate" else "dry-run"
            r.message = outcome.state
        elif outcome.state.startswith("rolled-back"):
            r.outcome, r.message = "rolled-back", outcome.state
        else:
            r.outcome, r.message = "failed", outcome.state

    async def _provide(self, r: HostResult, conn: Connection, system: str, build: NodeBuild, node: Any,
                       copied: Callable[[CopyStats], None]) -> None:
        """Get the system into the host's store: built there (`buildOn = "target"`: only the
        derivations travel), else copied from here."""
        if node["buildOn"] == "target" and build.drv:
            self.progress(r.node, "copying", "derivations")
            await copy_closure(conn, build.drv, copied)
            self.progress(r.node, "building", "on the host")
            await conn.run(f"nix-store --realise {shlex.quote(build.drv)} >/dev/null", timeout=3600)
            return
        self.progress(r.node, "copying", "")
        if self.local is None:  # what the local store knows of every system, asked once
            self.local = asyncio.ensure_future(LocalStore().load(self.systems))
        await copy_closure(conn, system, copied, await self.local, substitute=node["substituteOnTarget"])

    def _record(self, state: State, deploy_id: int, r: HostResult) -> None:
        conf = self.fleet.config["nodes"][r.node]["configuration"]
        rendered_file = node_file(self.fleet.rendered_dir, r.node, ".nix")
        rendered = rendered_file.read_text() if rendered_file.exists() else \
            render_node(r.node, conf, self.fleet.file, rendered_file.parent)
        outcome = r.outcome if r.outcome != "switched" or self.goal == "switch" else f"{self.goal}-ok"
        state.record_host(deploy_id, r.node, rendered=rendered, settings=settings_json(node_settings(conf, self.fleet.file)),
                          outcome=outcome, old_path=r.old_path, new_path=r.new_path, started=r.started,
                          log=json.dumps({"message": r.message, "activation": r.log, "copiedPaths": r.copied_paths,
                                          "copiedBytes": r.copied_bytes, "duration": r.duration}))


async def _discard(connecting: asyncio.Future[Connection]) -> None:
    """A connection that is no longer wanted: stopped if still being made, else closed."""
    connecting.cancel()
    try:
        conn = await connecting
    except (asyncio.CancelledError, NixusError):
        return
    await conn.close()
