"""`nixus deploy`: build, then per host copy → secrets → switch-then-confirm → record.

At most `parallel` hosts are in flight. A host that must deploy after others (`nixus graph`)
gets its system and secrets onto the host meanwhile and waits for them only before it
switches; no host waits for any other. A host that fails fails alone: without --keep-going no
more hosts start, but those in flight go on. Ctrl-C also stops hosts that have not begun to
switch, and lets the ones already switching finish or roll back.

The sequence talks to each host only through the `Host` protocol (host.py); how hosts are
reached, systems built and the local store read are given to `Deployment`, so that tests can
run the sequence against hosts of their own.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..build.nodes import NodeBuild, build_nodes
from ..evaluate.errors import NixusError
from ..fleet.evaluate import Fleet
from ..fleet.graph import deploy_order
from ..interrupts import on_interrupt
from .copy import copy_closure
from .goals import Goal, Outcome
from .host import CopyStats, Host, Unreachable
from .journal import Journal
from .secrets import Secret, fingerprint, node_secrets
from .store import LocalStore
from .switch import SwitchRequest, switch
from .targets import connect, target_for
from .transport import Target

INTERRUPTED = "interrupted"
RUNS_NOW_TIMEOUT = 15.0  # seconds to ask a host that dropped its connection what it runs
Progress = Callable[[str, str, str], None]  # (node, phase, detail)
Connect = Callable[[Target], Awaitable[Host]]
Build = Callable[[Fleet, list[str], Callable[[str, str], None], int | None], list[NodeBuild]]


@dataclass
class HostResult:
    """How one host's deploy went: what `nixus deploy` prints and the state database keeps."""

    node: str
    outcome: Outcome = Outcome.SKIPPED
    message: str = ""
    old_path: str | None = None
    new_path: str | None = None
    copied_paths: int = 0
    copied_bytes: int = 0
    started: float = field(default_factory=time.time)
    duration: float = 0.0
    log: str = ""
    step: str = ""  # what nixus was doing with the host, once connected (for a connection lost)

    @property
    def ok(self) -> bool:
        return self.outcome.ok


def build_here(fleet: Fleet, nodes: list[str], progress: Callable[[str, str], None],
               jobs: int | None) -> list[NodeBuild]:
    """Every node's system, built on this machine (closure sizes are not needed)."""
    return build_nodes(fleet, nodes, progress, jobs, sizes=False)


class Deployment:
    """One run of `nixus deploy` over the selected nodes."""

    def __init__(self, fleet: Fleet, nodes: list[str], goal: Goal, parallel: int, keep_going: bool,
                 dry_run: bool, progress: Progress, *, connect: Connect = connect, build: Build = build_here,
                 store: LocalStore | None = None, build_jobs: int | None = None):
        self.fleet, self.nodes, self.goal = fleet, nodes, goal
        self.parallel, self.keep_going, self.dry_run = parallel, keep_going, dry_run
        self.build_jobs = build_jobs  # Nix's, apart from the hosts in flight
        self.progress = progress
        self.connect, self.build, self.store = connect, build, store or LocalStore()
        self.results = {n: HostResult(n) for n in nodes}
        self.stopped: str | None = None  # why no more hosts start switching
        self.systems: list[str] = []  # built here, to be copied
        self.local: asyncio.Future[LocalStore] | None = None
        self.journal = Journal(fleet)
        # Every target (and jump host) is checked before any host is touched.
        self.targets = {n: target_for(fleet, n) for n in nodes}

    @property
    def unrecorded(self) -> str | None:
        """Why a host's record could not be written (then the deploy is left unfinished)."""
        return self.journal.unrecorded

    def run(self) -> list[HostResult]:
        with self.journal.held():
            return asyncio.run(self._run())

    async def _run(self) -> list[HostResult]:
        loop = asyncio.get_running_loop()
        with on_interrupt(lambda: loop.call_soon_threadsafe(self._stop, INTERRUPTED)):
            return await self._hosts()

    async def _hosts(self) -> list[HostResult]:
        order = deploy_order(self.fleet)
        # Hosts connect while the systems build: a handshake mostly waits for the host.
        builds = asyncio.ensure_future(self._build())
        self.journal.begin(self.goal)
        settled = {n: asyncio.Event() for n in self.nodes}
        slots = asyncio.Semaphore(self.parallel)
        await asyncio.gather(*(self._host(n, builds, [settled[b] for b in sorted(order[n]) if b in settled],
                                          settled[n], slots) for n in self.nodes))
        self.journal.finish()
        return [self.results[n] for n in self.nodes]

    async def _build(self) -> dict[str, NodeBuild]:
        """Every selected node's system (in a thread: the hosts connect meanwhile)."""
        builds = await asyncio.to_thread(self.build, self.fleet, self.nodes, lambda n, p: self.progress(n, p, ""),
                                         self.build_jobs)
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
            if r.step:  # it had answered: say when the connection went, and what the host runs now
                r.outcome, r.message = Outcome.FAILED, f"connection lost while {r.step}: {e}"
                r.message += await self._runs_now(node)
            else:
                r.outcome, r.message = Outcome.UNREACHABLE, str(e)
        except NixusError as e:  # includes a wrong host key: refused before anything is sent
            r.outcome, r.message = Outcome.FAILED, str(e)
        finally:
            settled.set()
        r.duration = time.time() - r.started
        self._keep_record(r)
        self.progress(node, r.outcome, r.message.splitlines()[0] if r.message else "")
        if r.outcome.stops_others and not self.keep_going:
            self._stop("an earlier host failed")

    def _keep_record(self, r: HostResult) -> None:
        """The host's record; when it cannot be written, no further host starts."""
        if r.outcome is Outcome.SKIPPED and not r.message:
            return
        outcome = r.outcome if r.outcome is not Outcome.SWITCHED or self.goal is Goal.SWITCH else f"{self.goal}-ok"
        log = json.dumps({"message": r.message, "activation": r.log, "copiedPaths": r.copied_paths,
                          "copiedBytes": r.copied_bytes, "duration": r.duration})
        if not self.journal.record(r.node, outcome, old=r.old_path, new=r.new_path, started=r.started, log=log):
            r.message += f" (not recorded: {self.journal.unrecorded})"
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
            connecting = asyncio.ensure_future(self.connect(target))
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
            host = await connecting
            r.step = "asking what it runs"
            try:
                if not await self._prepare(r, host, build, secrets, node):
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
                if not self.journal.start(r.node, old=r.old_path, new=r.new_path, started=r.started):
                    r.message = f"copied, not switched: its record cannot be written ({self.journal.unrecorded})"
                    self._stop("the state database cannot be written")
                    return
                r.step = "switching"
                await self._switch(r, host, node)
            finally:
                await host.close()

    async def _prepare(self, r: HostResult, host: Host, build: NodeBuild, secrets: list[Secret],
                       node: Any) -> bool:
        """Get the system and its secrets onto the host; False when there is nothing to switch."""
        system = build.out or ""
        now = await host.systems(system)
        r.old_path = now.current
        self.journal.settle_cut_short(r.node, now.current)
        if (self.goal.activates and now.current == system and now.staged == fingerprint(secrets)
                and (not self.goal.persists or now.boot == system)):
            r.outcome, r.message = Outcome.UNCHANGED, "already running this system"
            return False

        r.step = "copying the system"
        await self._provide(r, host, system, build, node)
        if self.dry_run:
            r.outcome, r.message = Outcome.DRY_RUN, f"copied {r.copied_paths} paths; not switched (--dry-run)"
            return False
        r.step = "staging the secrets"
        await host.stage_secrets(system, secrets)
        return True

    async def _switch(self, r: HostResult, host: Host, node: Any) -> None:
        request = SwitchRequest(self.journal.switch_id, r.new_path or "", self.goal, node["switchTimeout"],
                                node["successTimeout"], previous=r.old_path)
        outcome = await switch(host, request, lambda phase: self.progress(r.node, phase, ""))
        r.log, r.message = outcome.log, str(outcome.state)
        r.outcome = Outcome.of_switch(outcome.state, self.goal)

    async def _runs_now(self, node: str) -> str:
        """What the host runs, asked over a new connection: for a message ("" when not known)."""
        try:
            host = await asyncio.wait_for(self.connect(self.targets[node]), RUNS_NOW_TIMEOUT)
            try:
                now = await asyncio.wait_for(host.systems(""), RUNS_NOW_TIMEOUT)
            finally:
                await host.close()
        except (NixusError, asyncio.TimeoutError):
            return "; it cannot be reached again to say what it runs"
        r = self.results[node]
        runs = {r.old_path: "its old system", r.new_path: "the new system"}.get(now.current, now.current or "nothing")
        return f"; it runs {runs}"

    async def _provide(self, r: HostResult, host: Host, system: str, build: NodeBuild, node: Any) -> None:
        """Get the system into the host's store: built there (`buildOn = "target"`: only the
        derivations travel), else copied from here."""

        def progress(stats: CopyStats) -> None:
            copied(stats)
            self.progress(r.node, "copying", f"{stats.bytes / 1e6:.1f} MB")

        def copied(stats: CopyStats) -> None:
            r.copied_paths, r.copied_bytes = stats.paths, stats.bytes

        if node["buildOn"] == "target" and build.drv:
            self.progress(r.node, "copying", "derivations")
            copied(await copy_closure(host, build.drv, progress))
            self.progress(r.node, "building", "on the host")
            await host.run(f"nix-store --realise {shlex.quote(build.drv)} >/dev/null", timeout=3600)
            return
        self.progress(r.node, "copying", "")
        if self.local is None:  # what the local store knows of every system, asked once
            self.local = asyncio.ensure_future(self.store.load(self.systems))
        copied(await copy_closure(host, system, progress, await self.local, substitute=node["substituteOnTarget"]))


async def _discard(connecting: asyncio.Future[Host]) -> None:
    """A connection that is no longer wanted: stopped if still being made, else closed."""
    connecting.cancel()
    try:
        host = await connecting
    except (asyncio.CancelledError, NixusError):
        return
    await host.close()
