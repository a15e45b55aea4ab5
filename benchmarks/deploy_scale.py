"""How `nixus deploy` does on 8 test hosts against the obvious script, and how fast nixus copies a
closure to one host against `nix copy`; every figure from one run.

The fleet is render_scale.py's (admin keys granted everywhere, a star and a mesh WireGuard VPN of
all nodes, a zone with a record per node, primary on the first node and secondary on the second)
on 8 nodes, each on a local test host (`nixus testbed up`: its own network namespace, sshd and
/nix store). The hosts' directories, and so their stores, are on a tmpfs mounted for the
benchmark: on this machine's disk, creating a closure's files on a host is slow and erratic
(../shared/README.md).

Deploys (best of N; every run on fresh hosts, which lack everything: their stores hold no system):

- `nixus deploy --json` from scratch: every host switched (checked). The systems are built first
  (`nixus build`, not timed), as the baseline needs them built too; the timed deploy still
  evaluates the fleet and finds the systems in its build cache.
- `nixus deploy --json` again with nothing changed: every host unchanged, nothing copied (checked).
- The baseline, on hosts started afresh for it: per host in turn, `nix copy --to ssh://root@HOST
  SYSTEM` (NIX_SSHOPTS with the deploy key and strict host-key checking), then one ssh that
  unpacks the host's secrets (the WireGuard private keys nixus would deliver, as a tar archive
  on stdin), sets the system profile with `nix-env -p /nix/var/nix/profiles/system --set SYSTEM`
  and runs `SYSTEM/bin/switch-to-configuration switch`; then the same commands again for
  "nothing changed". Afterwards every host must run its system (checked).

Next to every deploy's time goes the CPU time it took on this machine: the deployer's side (the
processes this benchmark ran: nixus, nix, ssh) and the test hosts' (every process of theirs, from
sshd to the activation, counted through a cgroup). Where the time of the fastest deploy from
scratch goes, step by step, is read from nixus's progress lines.

Copy throughput (best of N), to one fresh test host, of two closures built without nixpkgs for
the run: 1000 small paths (999 text files and one that refers to them all) and one path of 200 MB
(random bytes). Before every copy the host's store loses the closure again (checked). nixus:
nixus_py.deploy.copy.copy_closure over a new nixus_py.deploy.ssh_host.SshHost (connecting
included, as `nix copy` starts its ssh); `nix copy --to ssh://` as for the deploys. The host
must hold the whole closure afterwards (checked).

Targets: a deploy from scratch in at most 0.4x the baseline's time, with nothing changed in at
most 0.1x, and copying never slower than `nix copy` (throughput ratio at least 1.0).

Test hosts are always torn down and the tmpfs unmounted, also on failure; the store paths the
benchmark made are deleted unless --keep (which keeps the fleets, their state and those paths).

    python benchmarks/deploy_scale.py [--hosts 8] [--repeat 3] [--keep DIR] [--no-record]

The tables go to stdout and, unless --no-record, into the `## deploy_scale` section of
benchmarks/RESULTS.md, with the command, the date, the machine and the nixus revision. Needs root.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import (Tools, arguments, command_line, delete_store_paths, find_tools, markdown_table, parse,
                    publish, run_capturing, section_head, use_checkout_python, verdict)
from render_scale import FleetDir, fleet_py, node_name

SECTION = "## deploy_scale"
TARGET_SCRATCH = 0.4  # nixus deploy from scratch / the sequential script
TARGET_UNCHANGED = 0.1  # nixus deploy with nothing changed / the same script again
TARGET_COPY = 1.0  # nixus's copy throughput / nix copy's, at least
SMALL_PATHS = 1000
BIG_BYTES = 200_000_000
TMPFS_SIZE = "8g"
NIX_COMMAND = ["nix", "--extra-experimental-features", "nix-command"]
PROFILE = "/nix/var/nix/profiles/system"

# Appended to render_scale.py's fleet.py: both VPNs run on every host, so they need ports of
# their own; and the fleet imports its test hosts, as tests/testbed_fixture.py's fleets do.
FLEET_EXTRA = '''
modules.append({"vpn": {"networks": {"mesh": {"port": 51821}}}})
if Path(__file__).with_name("testbed-hosts.py").exists():
    modules.append("testbed-hosts.py")
'''


# --- the fleets and their test hosts ------------------------------------------------------------

@dataclass(frozen=True)
class TestHost:
    """One running test host, as `nixus testbed up` recorded it."""

    node: str
    address: str
    host_key: str
    netns: str


@dataclass(frozen=True)
class DeployFleet(FleetDir):
    """A generated fleet on test hosts, and how to reach its hosts without nixus."""

    @property
    def testbed(self) -> Path:
        """Where `nixus testbed up` keeps the hosts (their stores included)."""
        return self.state / "testbed"

    @property
    def deploy_key(self) -> Path:
        return self.testbed / "deploy_key"

    def write(self) -> None:
        self.fleet.write_text(fleet_py(self.size, generator="deploy_scale.py", imports="from pathlib import Path")
                              + FLEET_EXTRA)

    def hosts(self) -> dict[str, TestHost]:
        data = json.loads((self.testbed / "testbed.json").read_text())["hosts"]
        return {n: TestHost(n, h["address"], h["host_key"], h["netns"]) for n, h in data.items()}

    def ssh_options(self) -> list[str]:
        """What the baseline's ssh and `nix copy` (NIX_SSHOPTS, split on spaces) log in with."""
        known = self.dir / "known_hosts"
        known.write_text("".join(f"{h.address} {h.host_key}\n" for h in self.hosts().values()))
        return ["-i", str(self.deploy_key), "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]

    def ssh(self, host: TestHost, command: str, tools: Tools, input: bytes | None = None) -> str:
        """The stdout of a command on a test host as root (a failure stops)."""
        _, out, _ = run_capturing(["ssh", *self.ssh_options(), f"root@{host.address}", command], tools, self.dir,
                                  self.state, input=input)
        return out

    def nix_copy(self, host: TestHost, path: str, tools: Tools) -> float:
        """Seconds of `nix copy --to ssh://` of path's closure to the host."""
        seconds, _, _ = run_capturing([*NIX_COMMAND, "copy", "--to", f"ssh://root@{host.address}", path], tools,
                                      self.dir, self.state, env={"NIX_SSHOPTS": " ".join(self.ssh_options())})
        return seconds


@dataclass
class Testbed:
    """Running test hosts, and the CPU time their processes (and all they start) have used."""

    hosts: dict[str, TestHost]
    cgroup: Path | None = None

    def cpu(self) -> float | None:
        """CPU seconds of the hosts so far; None where cgroups cannot tell."""
        if self.cgroup is None:
            return None
        if (self.cgroup / "cpuacct.usage").exists():  # cgroup v1
            return int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
        stat = dict(line.split() for line in (self.cgroup / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6


def cpu_cgroup(hosts: dict[str, TestHost]) -> Path | None:
    """A new cgroup holding every process of the hosts' network namespaces (their children join
    it too), in cgroup v1's cpuacct hierarchy or in cgroup v2; None when neither can be used."""
    for root in (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if not ((root / "cpuacct.usage").exists() or (root / "cgroup.controllers").exists()):
            continue
        group = root / f"nixus-deploy-scale-{os.getpid()}"
        try:
            group.mkdir()
            for host in hosts.values():
                pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout
                for pid in pids.split():
                    (group / "cgroup.procs").write_text(pid)
            return group
        except OSError:
            remove_cgroup(group)
    return None


def remove_cgroup(group: Path) -> None:
    """Remove a cgroup, handing processes still in it back to its parent."""
    if not group.exists():
        return
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            (group.parent / "cgroup.procs").write_text(pid)
        except OSError:  # it exited meanwhile
            pass
    try:
        group.rmdir()
    except OSError as e:
        print(f"deploy_scale: cannot remove the cgroup {group}: {e}", file=sys.stderr)


@contextmanager
def test_hosts(fleet: DeployFleet, tools: Tools) -> Iterator[Testbed]:
    """Fresh test hosts for the fleet's nodes, on a tmpfs, their CPU time counted; stopped and
    unmounted however the block ends."""
    fleet.testbed.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0700,size={TMPFS_SIZE}", "tmpfs",
                            str(fleet.testbed)], capture_output=True, text=True)
    if mount.returncode != 0:
        sys.exit(f"deploy_scale: cannot mount a tmpfs for the test hosts: {mount.stderr.strip()}")
    testbed = Testbed({})
    try:
        fleet.run([tools.nixus, "testbed", "up", "-f", str(fleet.fleet)], tools)
        testbed.hosts = fleet.hosts()
        testbed.cgroup = cpu_cgroup(testbed.hosts)
        yield testbed
    finally:
        down = subprocess.run([tools.nixus, "testbed", "down", "-f", str(fleet.fleet)], capture_output=True,
                              text=True, env=tools.env(fleet.state), cwd=fleet.dir)
        if testbed.cgroup is not None:
            remove_cgroup(testbed.cgroup)
        umount = subprocess.run(["umount", str(fleet.testbed)], capture_output=True, text=True)
        for step, proc in (("nixus testbed down", down), ("umount", umount)):
            if proc.returncode != 0:
                print(f"deploy_scale: {step} failed: {proc.stderr.strip()[-1000:]}", file=sys.stderr)


# --- deploys -------------------------------------------------------------------------------------

def build(fleet: DeployFleet, tools: Tools, built: list[str]) -> dict[str, str]:
    """Every node's system for the running hosts (`nixus build`, not timed)."""
    _, out = fleet.run([tools.nixus, "build", "-f", str(fleet.fleet), "--json"], tools)
    results = {b["node"]: b for b in json.loads(out)}
    failed = [n for n, b in results.items() if not b["ok"]]
    if failed or len(results) != fleet.size:
        sys.exit(f"deploy_scale: `nixus build` failed for {failed or 'some nodes'}:\n{out[-2000:]}")
    built += [b["path"] for b in results.values()]
    return {n: results[n]["path"] for n in sorted(results)}


def nixus_deploy(fleet: DeployFleet, tools: Tools, unchanged: bool) -> tuple[float, str]:
    """Seconds and progress (stderr) of `nixus deploy --json`; stops unless every host switched,
    or, when `unchanged`, every host was left as it was and nothing was copied."""
    seconds, out, err = run_capturing([tools.nixus, "deploy", "-f", str(fleet.fleet), "--json"], tools,
                                      fleet.dir, fleet.state)
    hosts = json.loads(out)
    expected = "unchanged" if unchanged else "switched"
    wrong = [h for h in hosts if h["outcome"] != expected or (h["copiedPaths"] > 0) == unchanged]
    if wrong or len(hosts) != fleet.size:
        sys.exit(f"deploy_scale: `nixus deploy` on {fleet.size} hosts: expected every host {expected}, got:\n"
                 + json.dumps(wrong[:3], indent=2))
    return seconds, err


def node_secrets_tar(fleet: DeployFleet, tools: Tools) -> dict[str, bytes]:
    """Each node's secrets as nixus delivers them (content, path, owner, mode), as a tar archive
    to unpack at / on the host: what the baseline sends."""
    from nixus_py import settings
    from nixus_py.deploy.secrets import node_secrets
    from nixus_py.fleet.evaluate import load_fleet

    os.environ["NIXUS_NIXPKGS_LIB"] = str(tools.nixpkgs_lib)
    settings.set_state_dir(str(fleet.state))
    loaded = load_fleet(fleet.fleet)
    archives = {}
    for i in range(fleet.size):
        name = node_name(i)
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for s in node_secrets(name, loaded.config["nodes"][name], loaded.state_dir, loaded.file.parent):
                info = tarfile.TarInfo(s.path.lstrip("/"))
                info.size, info.mode, info.uname, info.gname = len(s.content), int(s.mode, 8), s.user, s.group
                tar.addfile(info, io.BytesIO(s.content))
        archives[name] = data.getvalue()
    return archives


def baseline(fleet: DeployFleet, systems: dict[str, str], secrets: dict[str, bytes], tools: Tools) -> float:
    """Seconds of the obvious script: per host in turn, `nix copy` of its system, then one ssh
    that unpacks its secrets, sets the system profile and switches."""
    hosts = fleet.hosts()
    start = time.perf_counter()
    for node, system in systems.items():
        fleet.nix_copy(hosts[node], system, tools)
        fleet.ssh(hosts[node], f"tar -x -p -C / && nix-env -p {PROFILE} --set {system} && "
                               f"{system}/bin/switch-to-configuration switch", tools, input=secrets[node])
    return time.perf_counter() - start


def check_running(fleet: DeployFleet, systems: dict[str, str], tools: Tools) -> None:
    """Every host runs its system and boots it next (the baseline did its work)."""
    for node, host in fleet.hosts().items():
        out = fleet.ssh(host, f"readlink -e /run/current-system {PROFILE}", tools)
        if out.split() != [systems[node]] * 2:
            sys.exit(f"deploy_scale: after the baseline, {node} runs/boots {out.split()}, expected {systems[node]}")


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds, and CPU seconds here (the deployer and every process it
    ran) and on the test hosts (None where cgroups cannot tell)."""

    seconds: float
    here: float
    hosts: float | None


def children_cpu() -> float:
    """CPU seconds of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(testbed: Testbed, run: Callable[[], float]) -> Sample:
    """`run` (which returns its own wall-clock seconds) with the CPU time spent meanwhile."""
    here, hosts = children_cpu(), testbed.cpu()
    seconds = run()
    after = testbed.cpu()
    return Sample(seconds, children_cpu() - here, None if hosts is None or after is None else after - hosts)


@dataclass
class DeployRuns:
    """Every deploy run, by (side, state), and nixus's progress in each run from scratch."""

    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    progress: list[tuple[float, str]] = field(default_factory=list)

    def add(self, side: str, state: str, sample: Sample) -> None:
        self.samples.setdefault((side, state), []).append(sample)

    def best(self, side: str, state: str) -> Sample:
        return min(self.samples[side, state], key=lambda s: s.seconds)


def measure_deploys(fleet: DeployFleet, repeat: int, tools: Tools, built: list[str]) -> DeployRuns:
    """nixus and the baseline, each on fresh hosts in every run (the side that goes first alternates)."""
    runs = DeployRuns()
    secrets: dict[str, bytes] = {}

    def say(what: str) -> None:
        print(f"deploy_scale: {fleet.size} hosts, {what}", file=sys.stderr, flush=True)

    def nixus_side(k: int) -> None:
        with test_hosts(fleet, tools) as testbed:
            build(fleet, tools, built)
            for state, label in STATES.items():
                say(f"run {k}/{repeat}: nixus deploy, {label}")
                progress = []

                def deploy() -> float:
                    seconds, err = nixus_deploy(fleet, tools, unchanged=state == "unchanged")
                    progress.append((seconds, err))
                    return seconds

                runs.add("nixus", state, timed(testbed, deploy))
                if state == "scratch":
                    runs.progress += progress

    def baseline_side(k: int) -> None:
        with test_hosts(fleet, tools) as testbed:
            systems = build(fleet, tools, built)
            if not secrets:
                secrets.update(node_secrets_tar(fleet, tools))
            for state, label in STATES.items():
                say(f"run {k}/{repeat}: nix copy and switch per host, {label}")
                runs.add("baseline", state, timed(testbed, lambda: baseline(fleet, systems, secrets, tools)))
            check_running(fleet, systems, tools)

    for k in range(1, repeat + 1):
        sides = (nixus_side, baseline_side) if k % 2 else (baseline_side, nixus_side)
        for side in sides:
            side(k)
    return runs


# --- copy throughput -----------------------------------------------------------------------------

def make_closures(tools: Tools, cwd: Path) -> dict[str, str]:
    """The two closures to copy, new in the store for this run: SMALL_PATHS small paths, and one
    path of BIG_BYTES random bytes."""
    nonce = uuid.uuid4().hex
    small = (f'let n = "{nonce}"; in builtins.toFile "deploy-scale-small-${{n}}" (builtins.concatStringsSep "\\n" '
             f'(builtins.genList (i: builtins.toFile "deploy-scale-small-${{toString i}}-${{n}}" '
             f'"${{n}} ${{toString i}}\\n") {SMALL_PATHS - 1}))')
    big = (f'derivation {{ name = "deploy-scale-big-{nonce}"; system = builtins.currentSystem; '
           f'builder = "/bin/sh"; PATH = "/usr/bin:/bin"; '
           f'args = [ "-c" "head -c {BIG_BYTES} /dev/urandom > $out" ]; }}')
    _, small_out, _ = run_capturing(["nix-instantiate", "--eval", "--read-write-mode", "-E", small], tools, cwd)
    _, big_out, _ = run_capturing(["nix-build", "--no-out-link", "--option", "substituters", "", "-E", big],
                                  tools, cwd)
    return {"small": json.loads(small_out), "big": big_out.strip()}


def closure_of(path: str) -> tuple[list[str], int]:
    """The closure's paths and their total NAR size."""
    paths = subprocess.run(["nix-store", "-qR", path], capture_output=True, text=True, check=True).stdout.split()
    sizes = subprocess.run(["nix-store", "-q", "--size", *paths], capture_output=True, text=True, check=True)
    return paths, sum(map(int, sizes.stdout.split()))


def nixus_copy(fleet: DeployFleet, host: TestHost, path: str, expected: int) -> float:
    """Seconds of nixus's copy of path's closure to the host: connect, ask, stream, close."""
    from nixus_py.deploy.copy import copy_closure
    from nixus_py.deploy.ssh_host import SshHost
    from nixus_py.deploy.transport import Target

    target = Target(node=host.node, host=host.address, host_keys=(host.host_key,),
                    identity_file=str(fleet.deploy_key))

    async def copy() -> int:
        remote = await SshHost.open(target)
        try:
            return (await copy_closure(remote, path, lambda stats: None)).paths
        finally:
            await remote.close()

    start = time.perf_counter()
    copied = asyncio.run(copy())
    seconds = time.perf_counter() - start
    if copied != expected:
        sys.exit(f"deploy_scale: nixus copied {copied} paths of {path}'s closure to a fresh host, expected {expected}")
    return seconds


def invalid_on_host(fleet: DeployFleet, host: TestHost, paths: list[str], tools: Tools) -> int:
    """How many of the paths the host's store lacks."""
    out = fleet.ssh(host, "nix-store --check-validity --print-invalid $(cat)", tools, input="\n".join(paths).encode())
    return len(out.split())


@dataclass
class CopyRow:
    """The copies of one closure: seconds of each run, by copier."""

    kind: str
    paths: int
    bytes: int
    seconds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.paths} small paths" if self.kind == "small" else f"{self.paths} path of {self.bytes / 1e6:.0f} MB"

    def throughput(self, copier: str) -> float:
        """MB/s of the best run."""
        return self.bytes / 1e6 / min(self.seconds[copier])


COPIERS = {"nixus": "nixus", "nix": "nix copy"}


def measure_copies(fleet: DeployFleet, repeat: int, tools: Tools, made: list[str]) -> dict[str, CopyRow]:
    """Each closure copied to one fresh test host by nixus and by `nix copy`, its store emptied
    of the closure before every copy."""
    closures = {kind: (path, *closure_of(path)) for kind, path in make_closures(tools, fleet.dir).items()}
    for _, paths, _ in closures.values():
        made += paths
    rows = {}
    with test_hosts(fleet, tools) as testbed:
        host = testbed.hosts[node_name(0)]
        for kind, (path, paths, size) in closures.items():
            row = rows[kind] = CopyRow(kind, len(paths), size)
            for k in range(1, repeat + 1):
                for copier in (COPIERS if k % 2 else reversed(COPIERS)):
                    print(f"deploy_scale: run {k}/{repeat}: {COPIERS[copier]} of {row.label}", file=sys.stderr,
                          flush=True)
                    fleet.ssh(host, "nix-store --delete $(cat) >/dev/null", tools, input="\n".join(paths).encode())
                    if invalid_on_host(fleet, host, paths, tools) != len(paths):
                        sys.exit(f"deploy_scale: the test host still holds part of {path}'s closure")
                    seconds = (nixus_copy(fleet, host, path, len(paths)) if copier == "nixus"
                               else fleet.nix_copy(host, path, tools))
                    row.seconds.setdefault(copier, []).append(seconds)
                    if invalid_on_host(fleet, host, paths, tools):
                        sys.exit(f"deploy_scale: after {COPIERS[copier]}, the host lacks part of {path}'s closure")
    return rows


# --- where the time of a deploy goes --------------------------------------------------------------

# nixus's progress lines when stderr is not a terminal: "<node>: <phase>[ <detail>] (<seconds>s)",
# seconds since the deploy's per-host clock started (after the fleet was evaluated).
PROGRESS = re.compile(r"^(?P<node>\S+): (?P<phase>\S+)(?: .*)? \((?P<at>\d+(?:\.\d+)?)s\)$")
STEPS = [  # (what happens, the phase it starts with, the phase that ends it)
    ("render, evaluate, build (every system in the build cache)", "render", "built"),
    ("connect, read the running system and staged secrets", "connecting", "copying"),
    ("copy the closure, stage the secrets, start the switcher", "copying", "activating"),
    ("activate: switch-to-configuration test", "activating", "confirming"),
    ("confirm over a new connection, set the profile, boot entry", "confirming", "switched"),
]


def phases(seconds: float, progress: str) -> tuple[list[list[str]], list[str]]:
    """Table rows (step, mean per host, wall clock) of one deploy from scratch, and the hosts of
    later waves (they wait for another host to finish). The wall clock of a step runs from the
    first host's start to the last host's end of it, in the first wave."""
    first: dict[str, dict[str, float]] = {}
    for line in progress.splitlines():
        if m := PROGRESS.match(line.strip()):
            first.setdefault(m["node"], {}).setdefault(m["phase"], float(m["at"]))
    last = max((t for node in first.values() for t in node.values()), default=0.0)
    done = min((p["switched"] for p in first.values() if "switched" in p), default=last)
    later = sorted(n for n, p in first.items() if p.get("connecting", 0.0) >= done)
    rows = [["start-up and fleet evaluation before the per-host clock, recording after it", "",
             f"{seconds - last:.1f}"]]
    for label, start, end in STEPS:
        spans = {n: (p[start], p[end]) for n, p in first.items() if start in p and end in p}
        wave = [span for n, span in spans.items() if n not in later]
        if spans:
            mean = sum(b - a for a, b in spans.values()) / len(spans)
            rows.append([label, f"{mean:.1f}", f"{max(b for _, b in wave) - min(a for a, _ in wave):.1f}"])
    if later:
        rows.append([f"later wave ({', '.join(later)}): its first start to its last end", "",
                     f"{max(first[n]['switched'] for n in later) - min(first[n]['connecting'] for n in later):.1f}"])
    rows.append(["the whole deploy", "", f"{seconds:.1f}"])
    return rows, later


# --- reporting -------------------------------------------------------------------------------------

STATES = {"scratch": "from scratch", "unchanged": "nothing changed"}
TARGETS = {"scratch": TARGET_SCRATCH, "unchanged": TARGET_UNCHANGED}


def runs_text(values: list[float] | list[Sample]) -> str:
    """Every run's seconds, in the order they ran."""
    return ", ".join(f"{v.seconds if isinstance(v, Sample) else v:.2f}" for v in values)


def cpu_text(sample: Sample) -> str:
    hosts = "n/a" if sample.hosts is None else f"{sample.hosts:.1f}"
    return f"{sample.here:.1f} + {hosts}"


def report(n: int, runs: DeployRuns, copies: dict[str, CopyRow], repeat: int, command: str) -> str:
    """The `## deploy_scale` section: how it was run, the tables and the targets."""
    deploy_lines = [["deploy", "nixus deploy (s)", "runs", "nix copy + switch per host (s)", "runs",
                     "nixus / baseline", "target", "CPU s, nixus: here + hosts", "CPU s, baseline: here + hosts"]]
    targets = []
    for state, label in STATES.items():
        nixus, base = runs.best("nixus", state), runs.best("baseline", state)
        ratio = nixus.seconds / base.seconds
        deploy_lines.append([f"{n} hosts, {label}", f"{nixus.seconds:.2f}", runs_text(runs.samples["nixus", state]),
                             f"{base.seconds:.2f}", runs_text(runs.samples["baseline", state]), f"{ratio:.2f}x",
                             f"≤ {TARGETS[state]}", cpu_text(nixus), cpu_text(base)])
        targets.append(f"- {n} hosts {label}: nixus in {ratio:.2f}x the baseline's time (target ≤ {TARGETS[state]}): "
                       f"{verdict(ratio <= TARGETS[state])}")
    copy_lines = [["closure", "NAR size (MB)", "nixus (s)", "runs", "nix copy (s)", "runs", "nixus (MB/s)",
                   "nix copy (MB/s)", "throughput nixus / nix copy", "target"]]
    for row in copies.values():
        ratio = row.throughput("nixus") / row.throughput("nix")
        copy_lines.append([row.label, f"{row.bytes / 1e6:.1f}", f"{min(row.seconds['nixus']):.2f}",
                           runs_text(row.seconds["nixus"]), f"{min(row.seconds['nix']):.2f}",
                           runs_text(row.seconds["nix"]), f"{row.throughput('nixus'):.1f}",
                           f"{row.throughput('nix'):.1f}", f"{ratio:.2f}x", f"≥ {TARGET_COPY}"])
        targets.append(f"- copy of {row.label}: nixus at {ratio:.2f}x `nix copy`'s throughput (target ≥ "
                       f"{TARGET_COPY}): {verdict(ratio >= TARGET_COPY)}")
    best_seconds, best_progress = min(runs.progress)
    phase_rows, later = phases(best_seconds, best_progress)
    waves = (f" {', '.join(later)} started only after another host had finished (a later deploy wave: the DNS "
             "secondary waits for its primary)." if later else "")
    return "\n".join([
        *section_head(SECTION, command, "; test hosts' stores on tmpfs"),
        f"render_scale.py's fleet (admin keys, a star and a mesh WireGuard VPN, a zone) on {n} test hosts, every "
        "run on fresh hosts, best of "
        f"{repeat}. nixus: `nixus deploy --json` end to end (systems built beforehand, untimed; every host switched, "
        "then unchanged with nothing copied, checked). Baseline, on hosts started afresh: per host in turn `nix copy "
        "--to ssh://` of its system, then one ssh that unpacks its secrets, sets the system profile and runs "
        "`switch-to-configuration switch`; the same again for \"nothing changed\" (every host runs its system, "
        "checked).", "",
        markdown_table(deploy_lines), "",
        f"Copy throughput to one fresh test host (its store emptied of the closure before every copy, the whole "
        f"closure there afterwards, checked), best of {repeat}: nixus's copy_closure over a new SshHost "
        "(connecting included) against `nix copy --to ssh://`.", "",
        markdown_table(copy_lines), "",
        f"Where the time of the fastest deploy from scratch ({best_seconds:.2f} s) goes, from nixus's progress "
        "lines (0.1 s resolution): mean per host, and wall clock from the first host's start to the last host's "
        f"end of each step in the first wave.{waves} CPU time (in the first table) is this machine's: \"here\" "
        "is the deployer and every process it ran (nixus, nix, ssh), \"hosts\" every process of the test "
        "hosts (sshd, nix-store, the activation), counted through a cgroup.", "",
        markdown_table([["step", "mean per host (s)", "wall clock (s)"], *phase_rows]), "",
        "Targets:", "",
        *targets, "",
    ])


def main() -> None:
    """Start hosts, deploy, copy, time, check, tear down, print and record; no arguments needed."""
    parser = arguments(__doc__, 3, "runs of everything; the fastest counts",
                       "write the fleets here (kept, with their state and what the run built) instead of a "
                       "temp dir; test hosts are torn down all the same")
    parser.add_argument("--hosts", type=int, default=8, help="test hosts (nodes) for the deploys")
    args = parse(parser)
    if not 2 <= args.hosts <= 250:
        parser.error("--hosts: between 2 and 250")
    if os.geteuid() != 0:
        sys.exit("deploy_scale: test hosts need root (namespaces, veth pairs, a tmpfs)")
    use_checkout_python("deploy_scale")
    tools = find_tools("deploy_scale", "nix", "nix-build", "nix-instantiate", "nix-store", "ssh", "sshd",
                       "unshare", "ip")
    made: list[str] = []

    def measure(base: Path) -> tuple[DeployRuns, dict[str, CopyRow]]:
        if " " in str(base):
            sys.exit(f"deploy_scale: {base}: NIX_SSHOPTS is split on spaces, use a directory without them")
        deploy_fleet, copy_fleet = DeployFleet.fresh(base, args.hosts), DeployFleet.fresh(base, 1)
        for fleet in (deploy_fleet, copy_fleet):
            fleet.write()
        runs = measure_deploys(deploy_fleet, args.repeat, tools, made)
        return runs, measure_copies(copy_fleet, args.repeat, tools, made)

    if args.keep:
        runs, copies = measure(args.keep.resolve())
    else:
        try:
            with tempfile.TemporaryDirectory(prefix="nixus-deploy-scale-") as tmp:
                runs, copies = measure(Path(tmp))
        finally:
            delete_store_paths("deploy_scale", made)
    command = command_line("deploy_scale")
    section = report(args.hosts, runs, copies, args.repeat, command)
    publish(section, args.no_record)


if __name__ == "__main__":
    main()
