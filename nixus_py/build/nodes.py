"""`nixus build`: render every selected node and build its `system.build.toplevel`.

All nodes are evaluated by one `nix-instantiate` and built by one `nix-store --realise`
(Nix builds in parallel itself); only when that fails are the failing nodes retried one by one,
so each error is shown under its own node while the others are still built. Derivations of
nodes whose inputs cannot change behind nixus's back (a rendered module that reads no file and no
Nix value of the fleet, nixpkgs in the store or the testbed OS) are cached, so a rebuild with nothing changed starts no Nix evaluation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..children import die_with_parent
from ..fleet.formats import node_file
from ..fleet.evaluate import Fleet
from ..fleet.nixos_facts import FACTS_NIX
from ..nixlang import NixPath, NixValue, quote_string
from ..render.node import RenderedNode, Renderer
from ..settings import TESTBED_OS, private_dir

NIX_OPTS = ["--option", "substituters", ""]


@dataclass
class NodeBuild:
    """One node's build: its rendered module, derivation, output and what went wrong."""

    node: str
    module: Path
    expr: str = ""
    cache_key: str | None = None
    drv: str | None = None
    out: str | None = None
    closure_size: int | None = None
    cached: bool = False
    error: str | None = None
    phases: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.out is not None and self.error is None


Progress = Callable[[str, str], None]  # (node, phase)


def build_nodes(fleet: Fleet, nodes: list[str], progress: Progress, jobs: int | None = None,
                sizes: bool = True) -> list[NodeBuild]:
    """Render, evaluate and build the nodes (with their closure sizes unless not wanted), Nix
    running `jobs` builds at once (None: one per CPU core); every node gets a result, failed or not."""
    build_dir = private_dir(fleet.state_dir) / "build"
    rendered = fleet.rendered_dir
    rendered.mkdir(parents=True, exist_ok=True)
    cache_file = build_dir / "cache.json"
    # cache key (see _node_expr) -> [derivation, output]
    cache: dict[str, list[str]] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    config_nodes = fleet.config["nodes"]
    renderer = Renderer(fleet.file, rendered)
    builds = []
    for name in nodes:
        progress(name, "render")
        b = NodeBuild(name, node_file(rendered, name, ".nix"))
        try:
            files = renderer.write(name, config_nodes[name]["configuration"])
            b.expr, b.cache_key = _node_expr(name, config_nodes[name], files, fleet.file.parent)
            if renderer.mutable_inputs[name]:  # files, or the fleet's Nix code: not in the text
                b.cache_key = None
        except Exception as e:  # noqa: BLE001 - an evaluation error belongs to this node only
            b.error = str(e)
        builds.append(b)
    todo = [b for b in builds if b.error is None]
    # A cached derivation still in the store needs no evaluation; with its output there too
    # (one Nix call checks them all), not even a build.
    known = {b.node: cache[b.cache_key] for b in todo if b.cache_key and isinstance(cache.get(b.cache_key), list)}
    valid = _valid([p for entry in known.values() for p in entry])
    for b in todo:
        drv, out = known.get(b.node, ["", ""])
        if drv in valid:
            b.drv, b.cached = drv, True
            b.out = out if out in valid else None
    _instantiate([b for b in todo if b.drv is None], build_dir, progress, jobs)
    # Nodes built on their host (`buildOn = "target"`) only need their derivations here.
    on_target = [b for b in todo if b.drv is not None and config_nodes[b.node]["buildOn"] == "target"]
    if on_target:
        outs = _outputs([b.drv for b in on_target if b.drv])
        for b in on_target:
            b.out = outs.get(b.drv or "")
    _realise([b for b in todo if b.drv is not None and b.out is None and b not in on_target], progress, jobs)
    if sizes:
        _sizes([b for b in builds if b.out and b not in on_target])
    for b in builds:
        if b.cache_key and b.drv and b.ok:
            cache[b.cache_key] = [b.drv, b.out or ""] if b not in on_target else [b.drv, ""]
        progress(b.node, "built" if b.ok else "failed")
    cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return builds


# Every node imports nixus's facts.nix, whose text its module does not hold.
_FACTS_DIGEST = hashlib.sha256(FACTS_NIX.read_bytes()).hexdigest()


def _node_expr(name: str, node: Any, files: RenderedNode, base: Path) -> tuple[str, str | None]:
    """The Nix expression of the node's toplevel, and a cache key if its inputs are immutable."""
    nixpkgs = node["nixpkgs"]
    if nixpkgs is None:
        raise ValueError(f"nodes.{name}.nixpkgs is not set: point it at a nixpkgs checkout (or run "
                         "`nixus testbed up` to use the testbed OS)")
    source = str((base / nixpkgs.path).resolve()) if isinstance(nixpkgs, NixPath) else None
    nixpkgs_expr = quote_string(source) if source else (nixpkgs.nix() if isinstance(nixpkgs, NixValue)
                                                        else quote_string(str(nixpkgs)))
    special_args = (f"specialArgs = import {NixPath(str(files.special_args.resolve())).nix()}; "
                    if files.special_args else "")
    expr = (f"(import ({nixpkgs_expr} + \"/nixos/lib/eval-config.nix\") {{ system = {quote_string(node['system'])}; "
            f"modules = [ {NixPath(str(files.module.resolve())).nix()} ]; {special_args}}}).config.system.build.toplevel")
    key = None
    identity = _immutable_identity(source) if source else None
    if identity:
        key = hashlib.sha256(json.dumps([files.text, identity, node["system"], _FACTS_DIGEST]).encode()).hexdigest()
    return expr, key


@functools.cache
def _immutable_identity(nixpkgs: str) -> str | None:
    """What identifies a nixpkgs whose content nixus can vouch for: a store path, or the testbed
    OS (hashed, with the lib it points to)."""
    if nixpkgs.startswith("/nix/store/"):
        return nixpkgs
    nixos = Path(nixpkgs) / "nixos"
    if nixos.resolve() == TESTBED_OS:
        h = hashlib.sha256()
        for f in sorted(TESTBED_OS.rglob("*")):
            if f.is_file():
                h.update(f.name.encode() + f.read_bytes())
        lib = (Path(nixpkgs) / "lib").resolve()
        return f"testbed:{h.hexdigest()}:{lib}"
    return None


def _valid(paths: list[str]) -> set[str]:
    """Which of the paths are valid in the local store (one Nix call for all)."""
    if not paths:
        return set()
    proc = _run(["nix-store", "--check-validity", "--print-invalid", *paths])
    if proc.returncode != 0:  # not even a store path (a damaged cache.json, say): trust none of them
        return set()
    return set(paths) - set(proc.stdout.split())


def _instantiate(builds: list[NodeBuild], build_dir: Path, progress: Progress, jobs: int | None) -> None:
    if not builds:
        return
    for b in builds:
        progress(b.node, "evaluate")
    expr_file = build_dir / "nodes.nix"
    # Attributes are named by position, so that no node name reaches an `-A` attribute path.
    expr_file.write_text("{\n" + "".join(f"  n{i} = {b.expr};\n" for i, b in enumerate(builds)) + "}\n")
    args = ["nix-instantiate", *NIX_OPTS, str(expr_file)]
    for i in range(len(builds)):
        args += ["-A", f"n{i}"]
    proc = _run(args)
    if proc.returncode == 0:
        for b, drv in zip(builds, proc.stdout.split()):
            b.drv = drv
        return

    def one(i: int, b: NodeBuild) -> None:
        p = _run(["nix-instantiate", *NIX_OPTS, str(expr_file), "-A", f"n{i}"])
        if p.returncode == 0:
            b.drv = p.stdout.strip()
        else:
            b.error = _nix_error(p.stderr)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count()) as pool:
        list(pool.map(one, range(len(builds)), builds))


def _realise(builds: list[NodeBuild], progress: Progress, jobs: int | None) -> None:
    if not builds:
        return
    for b in builds:
        progress(b.node, "build")
    drvs = sorted({b.drv for b in builds if b.drv})
    # Nix builds the nodes itself, at most `jobs` at a time (deploy.buildJobs).
    proc = _run(["nix-store", *NIX_OPTS, "--realise", "--keep-going", "--max-jobs", str(jobs or "auto"), *drvs])
    if proc.returncode == 0:
        outs = _outputs(drvs)
        for b in builds:
            b.out = outs.get(b.drv or "")
        return

    def one(b: NodeBuild) -> None:
        p = _run(["nix-store", *NIX_OPTS, "--realise", b.drv or ""])
        if p.returncode == 0:
            b.out = p.stdout.strip().splitlines()[-1]
        else:
            b.error = _nix_error(p.stderr)

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count()) as pool:
        list(pool.map(one, builds))


def _run(args: list[str], check: bool = False) -> subprocess.CompletedProcess:
    """A Nix command's output; the command ends with nixus, even when nixus is killed."""
    return subprocess.run(args, capture_output=True, text=True, check=check, preexec_fn=die_with_parent)


def _outputs(drvs: list[str]) -> dict[str, str]:
    proc = _run(["nix-store", "-q", "--outputs", *drvs], check=True)
    return dict(zip(drvs, proc.stdout.split()))


def _sizes(builds: list[NodeBuild]) -> None:
    if not builds:
        return
    proc = _run(["nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "-S",
                 *[b.out for b in builds if b.out]])
    if proc.returncode != 0:
        return
    sizes = {e["path"]: e.get("closureSize") for e in json.loads(proc.stdout)}
    for b in builds:
        b.closure_size = sizes.get(b.out or "")


def _nix_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-15:])
