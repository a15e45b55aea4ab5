"""`nixus build`: render and build every selected node, with live per-host progress."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from ..fleet.evaluate import load_fleet
from ..fleet.select import select_nodes
from ..progress import HostProgress
from .nodes import build_nodes

BuildJobsOpt = typer.Option(None, "--build-jobs", min=1,
                            help="Derivations Nix builds at once (default deploy.buildJobs: one per core).")


def build(file: Optional[str] = typer.Option(None, "-f", "--file", help="Fleet file."),
          on: Optional[str] = typer.Option(None, "--on", help="Nodes to build: names, globs, @tags."),
          build_jobs: Optional[int] = BuildJobsOpt,
          as_json: bool = typer.Option(False, "--json", help="Machine-readable results.")) -> None:
    """Build each selected node's system; print its store path and closure size. Exit 1 if any failed."""
    fleet = load_fleet(file)
    nodes = select_nodes(fleet.config["nodes"], on)
    jobs = build_jobs or fleet.config["deploy"]["buildJobs"]
    with HostProgress(nodes, "nixus build") as progress:
        results = build_nodes(fleet, nodes, progress.update, jobs=jobs)
    if as_json:
        typer.echo(json.dumps([{"node": b.node, "ok": b.ok, "path": b.out, "drv": b.drv,
                                "closureSize": b.closure_size, "cached": b.cached, "error": b.error}
                               for b in results], indent=2))
    else:
        for b in results:
            if b.ok:
                size = f"{b.closure_size / 1024:.1f} KiB" if b.closure_size is not None else "size unknown"
                typer.echo(f"{b.node}: {b.out} ({size}{', cached' if b.cached else ''})")
            else:
                typer.echo(f"{b.node}: FAILED", err=True)
                for line in (b.error or "").splitlines():
                    typer.echo(f"  {b.node}| {line}", err=True)
    failed = [b.node for b in results if not b.ok]
    if failed:
        sys.stderr.write(f"error: {len(failed)} of {len(results)} nodes failed to build: {', '.join(failed)}\n")
        raise typer.Exit(1)
