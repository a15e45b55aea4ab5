"""How `nixus build` scales with the number of testbed nodes, against plain `nix-build` per node.

For each size (1, 10 and 50 nodes by default) this generates the fleet of render_scale.py (admin
keys granted everywhere, a star and a mesh VPN, a zone with a record per node) whose nodes build
the testbed OS: every node's `nixpkgs` is a stand-in directory with `lib` (the real nixpkgs lib)
and `nixos` (nixus's testbed OS), as `nixus testbed up` prepares it, so no test host has to run.
Every node's configuration carries a nonce (`environment.etc.bench.text`), and every timed build
"from scratch" gets a new one, so that no node's system is in the store yet and Nix really
evaluates and builds each of them.

Per size and run (best of N, a fresh process each):

- `nixus build --json` from scratch: evaluate the fleet, render, one `nix-instantiate` for all
  nodes, one `nix-store --realise`; every node must be built and none cached (checked).
- `nixus build --json` again with nothing changed: every node must come from nixus's derivation
  cache (checked).
- The baseline, in the same run: plain `nix-build --no-out-link --option substituters ""` once
  per node in sequence, on the files nixus rendered (`<state>/build/rendered/<node>.nix`) with the
  node expression nixus builds, `(import (<nixpkgs> + "/nixos/lib/eval-config.nix") { system;
  modules = [ <file> ]; }).config.system.build.toplevel`; from scratch on a copy of those files
  with a new nonce, then again with nothing changed. Plain `nix-build` of nixus's own files must
  give exactly nixus's store paths (checked), so both sides build the same systems.

Before the timed runs, one untimed `nixus build` generates the WireGuard keys and the lock and
puts what all nodes share (the testbed OS's activation script) into the store. Afterwards the
store paths the benchmark built are deleted again.

    python benchmarks/build_scale.py [--sizes 1,10,50] [--repeat 2] [--keep DIR] [--no-record]

The table goes to stdout and, unless --no-record, into the `## build_scale` section of
benchmarks/RESULTS.md, with the command, the date, the machine and the nixus revision.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from common import (TESTBED_OS, Tools, arguments, command_line, delete_store_paths, find_tools, markdown_table,
                    parse, publish, section_head)
from render_scale import FleetDir, fleet_py, node_name

SECTION = "## build_scale"
SYSTEM = "x86_64-linux"  # the nodes' default `system`
NIX_OPTS = ["--option", "substituters", ""]  # as nixus builds: nothing is fetched


# --- the fleet --------------------------------------------------------------------------------

def new_nonce() -> str:
    """A word no rendered file contains by chance, so it can be replaced in the text."""
    return f"bench-nonce-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class BuildFleet(FleetDir):
    """One generated fleet of testbed nodes and the paths nixus uses for it."""

    @property
    def rendered(self) -> Path:
        """Where `nixus build` writes the node modules it builds."""
        return self.state / "build" / "rendered"

    @property
    def nixpkgs(self) -> Path:
        """The stand-in nixpkgs, as `nixus testbed up` prepares it (Testbed._prepare)."""
        return self.dir / "nixpkgs"

    def write(self, nonce: str) -> None:
        """fleet.py with this nonce in every node's configuration."""
        configuration = ('{"networking": {"hostName": name}, '
                         f'"environment": {{"etc": {{"bench": {{"text": "{nonce}\\n"}}}}}}}}')
        self.fleet.write_text(fleet_py(self.size, generator="build_scale.py", imports="from nixus_py import nix",
                                       defaults={"nixpkgs": f"nix.path({json.dumps(str(self.nixpkgs))})",
                                                 "configuration": configuration}))


def prepare(base: Path, n: int, nixpkgs_lib: Path) -> BuildFleet:
    """A fresh directory with the stand-in nixpkgs; the fleet is written per run."""
    f = BuildFleet.fresh(base, n)
    f.nixpkgs.mkdir()
    (f.nixpkgs / "lib").symlink_to(nixpkgs_lib)
    (f.nixpkgs / "nixos").symlink_to(TESTBED_OS)
    return f


def node_expr(fleet: BuildFleet, module: Path) -> str:
    """The node's toplevel exactly as nixus builds it (nixus_py/build/nodes.py `_node_expr`)."""
    return (f"(import ({json.dumps(str(fleet.nixpkgs))} + \"/nixos/lib/eval-config.nix\") "
            f"{{ system = \"{SYSTEM}\"; modules = [ {module} ]; }}).config.system.build.toplevel")


# --- running and timing -----------------------------------------------------------------------

def nixus_build(fleet: BuildFleet, tools: Tools, cached: bool) -> tuple[float, dict[str, str]]:
    """Seconds of `nixus build --json` and each node's output; stops unless every node was built
    and came from nixus's cache exactly when `cached`."""
    seconds, out = fleet.run([tools.nixus, "build", "-f", str(fleet.fleet), "--json"], tools)
    results = {b["node"]: b for b in json.loads(out)}
    expected = [node_name(i) for i in range(fleet.size)]
    wrong = [n for n in expected if not results.get(n, {}).get("ok") or results[n]["cached"] != cached]
    if sorted(results) != expected or wrong:
        sys.exit(f"build_scale: `nixus build` on {fleet.size} nodes: expected every node built"
                 f"{', from the cache' if cached else ' afresh'}, got:\n"
                 + json.dumps([results.get(n) for n in wrong[:3]], indent=2))
    return seconds, {n: results[n]["path"] for n in expected}


def nix_build_each(fleet: BuildFleet, modules: list[Path], tools: Tools) -> tuple[float, list[str]]:
    """Seconds of plain `nix-build` once per node module, in sequence, and the outputs."""
    outs = []
    start = time.perf_counter()
    for module in modules:
        _, out = fleet.run(["nix-build", "--no-out-link", *NIX_OPTS, "-E", node_expr(fleet, module)], tools)
        outs.append(out.strip())
    return time.perf_counter() - start, outs


def baseline_files(fleet: BuildFleet, nonce: str, new: str, target: Path) -> list[Path]:
    """Copies of the modules nixus rendered, with the nonce replaced, in node order."""
    target.mkdir(parents=True)
    files = []
    for i in range(fleet.size):
        name = f"{node_name(i)}.nix"
        text = (fleet.rendered / name).read_text()
        if text.count(nonce) != 1:
            sys.exit(f"build_scale: {fleet.rendered / name} holds the nonce {text.count(nonce)} times, expected once")
        (target / name).write_text(text.replace(nonce, new))
        files.append(target / name)
    return files


def check_same_systems(fleet: BuildFleet, nixus_outs: dict[str, str], tools: Tools) -> None:
    """Plain nix-build of nixus's own rendered files must name nixus's outputs (already built)."""
    modules = [fleet.rendered / f"{n}.nix" for n in nixus_outs]
    _, out = fleet.run(["nix-build", "--no-out-link", *NIX_OPTS, "-E",
                        "[ " + " ".join(f"({node_expr(fleet, m)})" for m in modules) + " ]"], tools)
    if out.split() != list(nixus_outs.values()):
        sys.exit(f"build_scale: plain nix-build of nixus's rendered files gave other systems than `nixus build`:\n"
                 f"  nix-build: {out.split()[:3]}...\n  nixus:     {list(nixus_outs.values())[:3]}...")


# What is timed at every size.
KINDS = {"nixus": "nixus build", "nix": "nix-build per node"}
STATES = {"scratch": "from scratch", "unchanged": "nothing changed"}


@dataclass(frozen=True)
class Row:
    """The runs at one size: seconds of each run, by (KINDS key, STATES key)."""

    size: int
    runs: dict[tuple[str, str], list[float]]

    @property
    def seconds(self) -> dict[tuple[str, str], float]:
        """Best of the runs: what the table shows."""
        return {k: min(v) for k, v in self.runs.items()}


def measure_size(n: int, repeat: int, base: Path, tools: Tools, built: list[str]) -> Row:
    """Time nixus and plain nix-build on n nodes, from scratch and unchanged; `built` collects
    the store paths made, for the cleanup."""
    fleet = prepare(base, n, tools.nixpkgs_lib)
    runs: dict[tuple[str, str], list[float]] = {(k, s): [] for k in KINDS for s in STATES}

    def say(what: str) -> None:
        print(f"build_scale: {n} nodes, {what}", file=sys.stderr, flush=True)

    say("warm-up build (generates the keys, stores what all nodes share)")
    fleet.write(new_nonce())
    built += nixus_build(fleet, tools, cached=False)[1].values()
    for k in range(1, repeat + 1):
        nonce = new_nonce()
        fleet.write(nonce)
        say(f"run {k}/{repeat}: nixus build from scratch")
        seconds, outs = nixus_build(fleet, tools, cached=False)
        runs["nixus", "scratch"].append(seconds)
        built += outs.values()
        say(f"run {k}/{repeat}: nixus build with nothing changed")
        seconds, again = nixus_build(fleet, tools, cached=True)
        runs["nixus", "unchanged"].append(seconds)
        if again != outs:
            sys.exit("build_scale: `nixus build` with nothing changed gave other systems than the build before")
        if k == 1:
            check_same_systems(fleet, outs, tools)
        files = baseline_files(fleet, nonce, new_nonce(), fleet.dir / f"baseline-{k}")
        for state in STATES:
            say(f"run {k}/{repeat}: nix-build per node, {STATES[state]}")
            seconds, nix_outs = nix_build_each(fleet, files, tools)
            runs["nix", state].append(seconds)
        built += nix_outs
    return Row(n, runs)


# --- reporting --------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    """The results as a Markdown table (readable as plain text too): a line per size and state."""
    lines = [["nodes", "build", "nixus build (s)", "nixus build (ms/node)", "nix-build per node (s)",
              "nix-build per node (ms/node)", "nixus / nix-build"]]
    for r in rows:
        s = r.seconds
        for state, label in STATES.items():
            nixus, nix = s["nixus", state], s["nix", state]
            lines.append([str(r.size), label, f"{nixus:.3f}", f"{1000 * nixus / r.size:.0f}", f"{nix:.3f}",
                          f"{1000 * nix / r.size:.0f}", f"{nixus / nix:.2f}x"])
    return markdown_table(lines)


def summary(rows: list[Row]) -> list[str]:
    """What the numbers say at the largest size."""
    last = rows[-1]
    s = last.seconds
    out = []
    for state, label in STATES.items():
        ratio = s["nixus", state] / s["nix", state]
        out.append(f"- {last.size} nodes {label}: `nixus build` {s['nixus', state]:.2f} s "
                   f"({1000 * s['nixus', state] / last.size:.0f} ms/node), plain `nix-build` per node "
                   f"{s['nix', state]:.2f} s ({1000 * s['nix', state] / last.size:.0f} ms/node): nixus takes "
                   f"{ratio:.2f}x the time{' (faster)' if ratio < 1 else ''}")
    return out


def report(rows: list[Row], repeat: int, command: str) -> str:
    """The `## build_scale` section: how it was run, the table and what it says."""
    return "\n".join([
        *section_head(SECTION, command),
        "The fleet of render_scale.py on testbed nodes (the testbed OS as nixpkgs, no hosts running), with a "
        "nonce in every node's configuration that changes for every build from scratch. `nixus build --json` "
        f"end to end, from scratch (every node built, checked) and again with nothing changed (every node "
        f"cached, checked), best of {repeat}; against plain `nix-build --no-out-link --option substituters \"\"` "
        "once per node in sequence, on the files nixus rendered and its node expression (from scratch on a "
        "copy with a new nonce, then again). Plain nix-build of nixus's own files gives nixus's store paths "
        "(checked).", "",
        table(rows), "",
        *summary(rows), "",
    ])


def main() -> None:
    """Generate, build, time, check, print and record; no arguments needed."""
    args = parse(arguments(__doc__, 2, "runs per size, each on a new nonce; the fastest counts",
                           "write the fleets here (kept, with what they built) instead of a temp dir",
                           sizes="1,10,50"), least_nodes=1)
    sizes = args.sizes
    tools = find_tools("build_scale", "nix-build", "nix-instantiate", "nix-store")
    built: list[str] = []
    if args.keep:
        rows = [measure_size(n, args.repeat, args.keep.resolve(), tools, built) for n in sizes]
    else:
        try:
            with tempfile.TemporaryDirectory(prefix="nixus-build-scale-") as tmp:
                rows = [measure_size(n, args.repeat, Path(tmp), tools, built) for n in sizes]
        finally:
            delete_store_paths("build_scale", built)
    command = command_line("build_scale")
    section = report(rows, args.repeat, command)
    publish(section, args.no_record)


if __name__ == "__main__":
    main()
