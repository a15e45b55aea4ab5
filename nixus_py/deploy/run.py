"""`nixus deploy`: build, then per host copy → secrets → switch-then-confirm → record.

At most `parallel` hosts are in flight, wave by wave (`nixus graph`); a host that fails fails
alone, and no host waits for the others except for the waves. Ctrl-C stops starting hosts and
lets the ones already switching finish or roll back.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import os
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
from ..fleet.evaluate import Fleet
from ..fleet.graph import deploy_waves, fleet_graph
from ..interrupts import on_interrupt
from ..record.state import State
from ..render.node import render_node
from ..render.settings import node_settings, settings_json
from .copy import CopyStats, copy_closure
from .secrets import Secret, fingerprint, node_secrets, stage
from .switch import switch
from .transport import Connection, Unreachable, target_for

Goal = Literal["switch", "boot", "test", "dry-activate"]
Outcome = Literal["switched", "unchanged", "rolled-back", "failed", "unreachable", "skipped", "dry-run"]
GOOD = ("switched", "unchanged", "dry-run")


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
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "deploy.lock"
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
        self.stop_starting = False
        self.id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def run(self) -> list[HostResult]:
        with deploy_lock(self.fleet.state_dir):
            return asyncio.run(self._run())

    async def _run(self) -> list[HostResult]:
        loop = asyncio.get_running_loop()
        with on_interrupt(lambda: loop.call_soon_threadsafe(self._interrupt)):
            return await self._hosts()

    async def _hosts(self) -> list[HostResult]:
        builds = await asyncio.to_thread(build_nodes, self.fleet, self.nodes,
                                         lambda n, p: self.progress(n, p, ""), self.parallel)
        by_node = {b.node: b for b in builds}
        state = State(self.fleet.state_dir)
        rev, dirty = git_revision(self.fleet.file.parent)
        deploy_id = state.begin_deploy(self.fleet.file, self.goal, rev, dirty)
        waves = [[n for n in wave if n in self.results] for wave in deploy_waves(fleet_graph(self.fleet.config))]
        semaphore = asyncio.Semaphore(self.parallel)
        for wave in waves:
            await asyncio.gather(*(self._host(n, by_node[n], semaphore) for n in wave))
        for r in self.results.values():
            if r.outcome != "skipped" or r.message:
                self._record(state, deploy_id, r)
        state.finish_deploy(deploy_id)
        return [self.results[n] for n in self.nodes]

    def _interrupt(self) -> None:
        self.stop_starting = True
        for r in self.results.values():
            if r.outcome == "skipped" and not r.message:
                r.message = "not started: interrupted"

    async def _host(self, node: str, build: NodeBuild, semaphore: asyncio.Semaphore) -> None:
        r = self.results[node]
        async with semaphore:
            if self.stop_starting:
                r.message = r.message or "not started: an earlier host failed"
                self.progress(node, "skipped", r.message)
                return
            r.started = time.time()
            try:
                await self._deploy_host(r, build)
            except Unreachable as e:
                r.outcome, r.message = "unreachable", str(e)
            except NixusError as e:  # includes a wrong host key: refused before anything is sent
                r.outcome, r.message = "failed", str(e)
            r.duration = time.time() - r.started
            self.progress(node, r.outcome, r.message.splitlines()[0] if r.message else "")
            if not r.ok and not self.keep_going:
                self.stop_starting = True

    async def _deploy_host(self, r: HostResult, build: NodeBuild) -> None:
        if not build.ok:
            raise NixusError(f"build failed: {build.error}")
        node = self.fleet.config["nodes"][r.node]
        r.new_path = build.out
        secrets = node_secrets(r.node, node, self.fleet.state_dir, self.fleet.file.parent)
        target = target_for(r.node, node, self.fleet.config["deploy"]["identityFile"])
        self.progress(r.node, "connecting", target.describe())
        conn = await Connection.open(target)
        try:
            await self._on_host(r, conn, build, secrets, node)
        finally:
            await conn.close()

    async def _on_host(self, r: HostResult, conn: Connection, build: NodeBuild, secrets: list[Secret],
                       node: Any) -> None:
        system = build.out or ""
        current = (await conn.run("readlink -e /run/current-system || true", timeout=30)).stdout.strip()
        r.old_path = current or None
        staged = await conn.run(f"cat /nix/var/nixus/secrets/{Path(system).name}/fingerprint 2>/dev/null || true",
                                timeout=30)
        if self.goal in ("switch", "test") and current == system and staged.stdout.strip() == fingerprint(secrets):
            profile = (await conn.run("readlink -e /nix/var/nix/profiles/system || true", timeout=30)).stdout.strip()
            if self.goal == "test" or profile == system:
                r.outcome, r.message = "unchanged", "already running this system"
                return

        def copied(stats: CopyStats) -> None:
            r.copied_paths, r.copied_bytes = stats.paths, stats.bytes
            self.progress(r.node, "copying", f"{stats.bytes / 1e6:.1f} MB")

        await self._provide(r, conn, system, build, node, copied)
        if self.dry_run:
            r.outcome, r.message = "dry-run", f"copied {r.copied_paths} paths; not switched (--dry-run)"
            return
        await stage(conn, system, secrets)
        outcome = await switch(conn, self.id, system, self.goal, node["switchTimeout"], node["successTimeout"],
                               lambda phase: self.progress(r.node, phase, ""))
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
            await conn.run(f"nix-store --realise {build.drv} >/dev/null", timeout=3600)
            return
        self.progress(r.node, "copying", "")
        await copy_closure(conn, system, copied)

    def _record(self, state: State, deploy_id: int, r: HostResult) -> None:
        conf = self.fleet.config["nodes"][r.node]["configuration"]
        rendered_file = self.fleet.rendered_dir / f"{r.node}.nix"
        rendered = rendered_file.read_text() if rendered_file.exists() else \
            render_node(r.node, conf, self.fleet.file, rendered_file.parent)
        outcome = r.outcome if r.outcome != "switched" or self.goal == "switch" else f"{self.goal}-ok"
        state.record_host(deploy_id, r.node, rendered=rendered, settings=settings_json(node_settings(conf, self.fleet.file)),
                          outcome=outcome, old_path=r.old_path, new_path=r.new_path, started=r.started,
                          log=json.dumps({"message": r.message, "activation": r.log, "copiedPaths": r.copied_paths,
                                          "copiedBytes": r.copied_bytes, "duration": r.duration}))
