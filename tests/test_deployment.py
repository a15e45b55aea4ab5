"""The per-host deploy sequence (`Deployment`) against hosts of the test's own: the order of the
steps, waves (`deployAfter`), one host failing, Ctrl-C, and each host's record written as it
settles. No root, no Nix, no ssh: each test takes a fraction of a second.

The end-to-end tests on real test hosts (test_deploy.py) show that `SshHost` does what these
fake hosts pretend to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nixus_py.build.nodes import NodeBuild
from nixus_py.deploy.goals import Goal
from nixus_py.deploy.host import CopyStats, HostError, Result, Systems, Unreachable
from nixus_py.deploy.run import Build, Deployment, HostResult
from nixus_py.deploy.secrets import Secret, fingerprint
from nixus_py.deploy.store import LocalStore, PathInfo
from nixus_py.deploy.switch import SwitchReport, SwitchRequest
from nixus_py.deploy.transport import Target
from nixus_py.fleet.evaluate import Fleet, load_fleet
from nixus_py.interrupts import interrupt
from nixus_py.record.state import State

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"
OLD = "/nix/store/00000000000000000000000000000000-nixos-system-old"
Hook = Callable[[], Awaitable[None]]


def system(node: str) -> str:
    return f"/nix/store/{node[0] * 32}-nixos-system-{node}"


@dataclass
class Hosts:
    """The fake hosts of one test: what each runs and holds, every step in the order it was
    taken (`steps`: (node, step)), and hooks that run at a step (before it is done)."""

    running: dict[str, str] = field(default_factory=dict)
    booting: dict[str, str] = field(default_factory=dict)
    staged: dict[str, str] = field(default_factory=dict)  # node -> fingerprint of its staged secrets
    stores: dict[str, set[str]] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)
    hooks: dict[tuple[str, str], Hook] = field(default_factory=dict)
    # What the host's switcher says after activating: confirmed it commits, else the reason to roll back.
    ending: dict[str, str] = field(default_factory=dict)

    async def connect(self, target: Target) -> FakeHost:
        await self.step(target.node, "connect")
        return FakeHost(target.node, self)

    async def step(self, node: str, name: str) -> None:
        hook = self.hooks.get((node, name))
        if hook is not None:
            await hook()
        self.steps.append((node, name))

    def hold(self, step: tuple[str, str], until: tuple[str, str], then: Callable[[], object] = lambda: None) -> None:
        """Let `step` wait until the step `until` is taken, then call `then`."""
        taken = asyncio.Event()

        async def mark() -> None:
            taken.set()

        async def wait() -> None:
            await taken.wait()
            then()

        self.hooks[until], self.hooks[step] = mark, wait

    def of(self, node: str) -> list[str]:
        return [s for n, s in self.steps if n == node]


@dataclass
class FakeHost:
    """A host that keeps its state in `hosts` and switches at once."""

    node: str
    hosts: Hosts

    async def systems(self, new: str) -> Systems:
        await self.hosts.step(self.node, "systems")
        h = self.hosts
        return Systems(h.running.get(self.node, OLD), h.booting.get(self.node, OLD), h.staged.get(self.node, ""))

    async def missing(self, paths: list[str], substitute: bool) -> set[str]:
        await self.hosts.step(self.node, "missing")
        return set(paths) - self.hosts.stores.setdefault(self.node, set())

    async def receive(self, paths: list[PathInfo], progress: Callable[[CopyStats], None]) -> CopyStats:
        await self.hosts.step(self.node, "receive")
        self.hosts.stores[self.node] |= {p.path for p in paths}
        return CopyStats(len(paths), sum(p.nar_size for p in paths))

    async def stage_secrets(self, system: str, secrets: list[Secret]) -> None:
        await self.hosts.step(self.node, "stage")
        self.hosts.staged[self.node] = fingerprint(secrets)

    async def start_switch(self, request: SwitchRequest, report: SwitchReport) -> None:
        await self.hosts.step(self.node, f"start {request.goal}")
        if request.goal is Goal.DRY_ACTIVATE:
            self._say(report, "done: dry-activate exited 0")
            return
        if request.goal is Goal.BOOT:  # nothing activates: nothing to confirm
            self.hosts.booting[self.node] = request.system
            self._say(report, "committed")
            return
        self._say(report, "activating")
        self.hosts.running[self.node] = request.system
        self._say(report, "activated")

    async def confirm(self, request: SwitchRequest, report: SwitchReport) -> None:
        await self.hosts.step(self.node, "confirm")
        reason = self.hosts.ending.get(self.node)
        if reason is not None:
            self.hosts.running[self.node] = OLD
            self._say(report, f"rolled-back: {reason}")
        else:
            if request.goal.persists:
                self.hosts.booting[self.node] = request.system
            self._say(report, "committed")

    async def follow(self, request: SwitchRequest, report: SwitchReport) -> None:
        await self.hosts.step(self.node, "follow")

    async def run(self, command: str, timeout: float = 60.0, check: bool = True) -> Result:
        await self.hosts.step(self.node, f"run {command.split()[0]}")
        return Result(0, "")

    async def close(self) -> None:
        await self.hosts.step(self.node, "close")

    @staticmethod
    def _say(report: SwitchReport, state: str) -> None:
        for line in (f"state {state}", f"old {OLD}", "log", "activation log") if state.split(":")[0] in (
                "committed", "rolled-back", "done") else (f"state {state}",):
            report.line(line)


def fleet(tmp_path: Path, nodes: dict[str, dict]) -> Fleet:
    """A fleet.py of these nodes (each with a host key, so that nixus may reach it)."""
    for options in nodes.values():
        options.setdefault("hostKeys", [KEY])
    (tmp_path / "fleet.py").write_text(f"modules = [{{'nodes': {nodes!r}}}]\n")
    return load_fleet(tmp_path / "fleet.py")


def built(fleet: Fleet, nodes: list[str], progress: Callable[[str, str], None], jobs: int | None) -> list[NodeBuild]:
    """Every node 'built' at once: its system is `system(node)`."""
    return [NodeBuild(n, fleet.rendered_dir / f"{n}.nix", out=system(n)) for n in nodes]


def store(nodes: list[str]) -> LocalStore:
    """The local store's view of the systems: one path each, referring to nothing."""
    local = LocalStore()
    local.infos = {system(n): PathInfo(system(n), "0" * 64, 1000, "", ()) for n in nodes}
    return local


def deploy(f: Fleet, hosts: Hosts, *, goal: Goal = Goal.SWITCH, parallel: int = 10, keep_going: bool = False,
           dry_run: bool = False, build: Build = built, build_jobs: int | None = None) -> dict[str, HostResult]:
    nodes = list(f.config["nodes"])
    deployment = Deployment(f, nodes, goal, parallel, keep_going, dry_run, lambda node, phase, detail: None,
                            connect=hosts.connect, build=build, store=store(nodes), build_jobs=build_jobs)
    return {r.node: r for r in deployment.run()}


def recorded(f: Fleet) -> dict[str, str]:
    """The outcome of each host in the newest deploy, as `nixus history` reads it."""
    newest = State(f.state_dir).history()[0]
    return {h["node"]: h["outcome"] for h in newest["hosts"]}


def test_a_host_is_connected_checked_copied_staged_switched_confirmed_and_closed_in_that_order(
        tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()
    results = deploy(f, hosts)
    assert hosts.of("a") == ["connect", "systems", "missing", "receive", "stage", "start switch", "confirm", "close"]
    assert results["a"].outcome == "switched" and results["a"].old_path == OLD
    assert (results["a"].copied_paths, results["a"].copied_bytes) == (1, 1000)
    assert hosts.running["a"] == hosts.booting["a"] == system("a")
    assert recorded(f) == {"a": "switched"}


@pytest.mark.parametrize("build_jobs", [None, 3])
def test_hosts_in_flight_are_not_nix_build_jobs(tmp_path: Path, build_jobs: int | None) -> None:
    """Nix waits when given more jobs than it has build users: --parallel 32 must not ask for 32."""
    f = fleet(tmp_path, {"a": {}})
    asked: list[int | None] = []

    def counted(fleet: Fleet, nodes: list[str], progress: Callable[[str, str], None],
                jobs: int | None) -> list[NodeBuild]:
        asked.append(jobs)
        return built(fleet, nodes, progress, jobs)

    assert deploy(f, Hosts(), parallel=32, build=counted, build_jobs=build_jobs)["a"].ok
    assert asked == [build_jobs]


def test_a_host_already_running_its_system_is_unchanged_and_nothing_is_sent(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts(running={"a": system("a")}, booting={"a": system("a")}, staged={"a": fingerprint([])})
    results = deploy(f, hosts)
    assert results["a"].outcome == "unchanged"
    assert hosts.of("a") == ["connect", "systems", "close"]


def test_a_host_deploys_after_the_hosts_it_names_but_copies_meanwhile(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {"deployAfter": ["a"]}})
    hosts = Hosts()
    hosts.hold(("a", "start switch"), until=("b", "stage"))
    results = deploy(f, hosts)
    assert {r.outcome for r in results.values()} == {"switched"}
    assert hosts.steps.index(("b", "stage")) < hosts.steps.index(("a", "start switch"))
    assert hosts.steps.index(("a", "close")) < hosts.steps.index(("b", "start switch"))


def test_a_failing_host_fails_alone_and_no_more_hosts_start(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {}, "c": {}})
    hosts = Hosts()

    async def activation_breaks() -> None:
        raise HostError("a: cannot start the switcher (1): no space left")

    hosts.hooks = {("a", "start switch"): activation_breaks}
    results = deploy(f, hosts, parallel=2)
    assert results["a"].outcome == "failed" and "no space left" in results["a"].message
    assert results["b"].outcome == "switched"  # in flight when a failed: it carries on
    assert results["c"].outcome == "skipped" and results["c"].message == "not started: an earlier host failed"
    assert "c" not in {n for n, _ in hosts.steps}
    assert recorded(f) == {"a": "failed", "b": "switched", "c": "skipped"}


def test_an_unreachable_host_is_told_from_a_failed_one(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {}})
    hosts = Hosts()

    async def no_route() -> None:
        raise Unreachable("a: cannot reach root@a:22: no route to host")

    hosts.hooks = {("a", "connect"): no_route}
    results = deploy(f, hosts, keep_going=True)
    assert results["a"].outcome == "unreachable" and "no route to host" in results["a"].message
    assert results["b"].outcome == "switched"


def test_a_connection_lost_midway_says_during_which_step_and_what_the_host_runs(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()

    async def dropped() -> None:
        raise Unreachable("a: connection lost while sending: Connection reset by peer")

    hosts.hooks = {("a", "receive"): dropped}
    result = deploy(f, hosts)["a"]
    assert result.outcome == "failed", result
    assert result.message == ("connection lost while copying the system: a: connection lost while sending: "
                              "Connection reset by peer; it runs its old system")


def test_a_node_that_does_not_build_fails_before_its_host_changes(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()

    def broken(fleet: Fleet, nodes: list[str], progress: Callable[[str, str], None], jobs: int | None) -> list[NodeBuild]:
        return [NodeBuild(n, fleet.rendered_dir / f"{n}.nix", error="undefined variable 'pkgs'") for n in nodes]

    result = deploy(f, hosts, build=broken)["a"]
    assert result.outcome == "failed" and result.message == "build failed: undefined variable 'pkgs'"
    assert hosts.of("a") in ([], ["connect", "close"])  # a connection made meanwhile is let go


def test_with_keep_going_the_hosts_after_a_failure_still_start(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {}})
    hosts = Hosts(ending={"a": "no confirmation within 5s"})
    results = deploy(f, hosts, parallel=1, keep_going=True)
    assert results["a"].outcome == "rolled-back" and results["a"].message == "rolled-back: no confirmation within 5s"
    assert results["b"].outcome == "switched"


def test_ctrl_c_lets_the_switching_host_finish_and_starts_no_other(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {}})
    hosts = Hosts()

    async def ctrl_c() -> None:
        interrupt()

    hosts.hooks = {("a", "confirm"): ctrl_c}
    results = deploy(f, hosts, parallel=1)
    assert results["a"].outcome == "switched"
    assert results["b"].outcome == "skipped" and results["b"].message == "not started: interrupted"
    assert hosts.of("b") == []


def test_ctrl_c_switches_no_host_that_has_not_begun_to(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {"deployAfter": ["a"]}})
    hosts = Hosts()
    hosts.hold(("a", "confirm"), until=("b", "stage"), then=interrupt)  # Ctrl-C while b waits for a
    results = deploy(f, hosts)
    assert results["a"].outcome == "switched"
    assert results["b"].outcome == "skipped" and results["b"].message == "copied, not switched: interrupted"
    assert hosts.of("b") == ["connect", "systems", "missing", "receive", "stage", "close"]
    assert recorded(f) == {"a": "switched", "b": "skipped"}


def test_each_hosts_record_is_written_as_it_settles(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}, "b": {}})
    hosts = Hosts()
    seen: dict[str, str] = {}

    async def look_at_the_records() -> None:
        seen.update(recorded(f))
        assert State(f.state_dir).history()[0]["finished"] is None

    hosts.hooks = {("b", "connect"): look_at_the_records}
    deploy(f, hosts, parallel=1)
    assert seen == {"a": "switched"}
    assert State(f.state_dir).history()[0]["finished"] is not None


def test_dry_run_copies_but_stages_and_switches_nothing(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()
    results = deploy(f, hosts, dry_run=True)
    assert results["a"].outcome == "dry-run" and results["a"].message == "copied 1 paths; not switched (--dry-run)"
    assert hosts.of("a") == ["connect", "systems", "missing", "receive", "close"]
    assert hosts.running.get("a") is None


def test_dry_activate_is_told_apart_from_dry_run(tmp_path: Path) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()
    results = deploy(f, hosts, goal=Goal.DRY_ACTIVATE)
    assert results["a"].outcome == "dry-activated"
    assert "start dry-activate" in hosts.of("a") and "confirm" not in hosts.of("a")
    assert recorded(f) == {"a": "dry-activated"}


@pytest.mark.parametrize(("goal", "recorded_as", "boots_new"), [
    (Goal.TEST, "test-ok", False), (Goal.BOOT, "boot-ok", True)])
def test_goals_other_than_switch_are_recorded_as_such(tmp_path: Path, goal: Goal, recorded_as: str,
                                                      boots_new: bool) -> None:
    f = fleet(tmp_path, {"a": {}})
    hosts = Hosts()
    results = deploy(f, hosts, goal=goal)
    assert results["a"].outcome == "switched"
    assert recorded(f) == {"a": recorded_as}
    assert (hosts.booting.get("a") == system("a")) is boots_new
    log = json.loads(State(f.state_dir).last_record("a").log)  # type: ignore[union-attr]
    assert log["copiedPaths"] == 1


def test_a_host_key_that_ssh_cannot_load_fails_that_host_before_it_is_reached() -> None:
    """A `HostError` of its own host, which the sequence above takes per host (a key type or curve
    point that `hostKeys`' check lets through and asyncssh does not used to end every host's deploy)."""
    from nixus_py.deploy.host import HostKeyMismatch
    from nixus_py.deploy.transport import Connection
    off_curve = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA" + "A" * 85 + "="
    with pytest.raises(HostKeyMismatch, match=r"a: nodes\.a\.hostKeys holds a key ssh cannot use"):
        asyncio.run(Connection.open(Target("a", "192.0.2.1", host_keys=(off_curve,)), timeout=1))
