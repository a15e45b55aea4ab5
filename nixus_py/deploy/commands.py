"""`nixus deploy`, `nixus status`, `nixus history`, `nixus rollback`."""

from __future__ import annotations

import json
import sys
import time
from typing import Optional

import typer

from ..evaluate.errors import NixusError
from ..fleet.evaluate import load_fleet
from ..fleet.select import select_nodes
from ..progress import HostProgress
from ..record.state import State
from ..build.commands import BuildJobsOpt
from .goals import Goal, Outcome

FileOpt = typer.Option(None, "-f", "--file", help="Fleet file (default ./fleet.py, else ./fleet.nix).")
OnOpt = typer.Option(None, "--on", help="Nodes to act on: names, globs and @tags, comma-separated.")


def deploy(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt,
           goal: str = typer.Option(Goal.SWITCH.value, "--goal", help="switch, boot, test or dry-activate."),
           parallel: Optional[int] = typer.Option(None, "--parallel", help="Hosts in flight (default deploy.parallel)."),
           build_jobs: Optional[int] = BuildJobsOpt,
           keep_going: bool = typer.Option(False, "--keep-going", help="Go on starting hosts after one failed."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Build and copy, but switch nothing."),
           as_json: bool = typer.Option(False, "--json", help="Machine-readable results.")) -> None:
    """Build, copy and switch each selected node with confirm-or-rollback. Exit 1 if any host failed."""
    from .run import Deployment  # asyncssh: imported when deploying
    chosen = Goal.parse(goal)
    fleet = load_fleet(file)
    nodes = select_nodes(fleet.config["nodes"], on)
    nodes = [n for n in nodes if fleet.config["nodes"][n]["enable"]]
    hosts = parallel or fleet.config["deploy"]["parallel"]
    with HostProgress(nodes, f"nixus deploy ({goal})") as progress:
        deployment = Deployment(fleet, nodes, chosen, hosts, keep_going, dry_run, progress.update,
                                build_jobs=build_jobs or fleet.config["deploy"]["buildJobs"])
        results = deployment.run()
    if as_json:
        typer.echo(json.dumps([{"node": r.node, "outcome": r.outcome, "message": r.message, "old": r.old_path,
                                "new": r.new_path, "copiedPaths": r.copied_paths, "copiedBytes": r.copied_bytes,
                                "duration": round(r.duration, 3)} for r in results], indent=2))
    else:
        for r in results:
            line = f"{r.node}: {r.outcome}"
            if r.copied_paths:
                line += f" (copied {r.copied_paths} paths, {r.copied_bytes / 1e6:.1f} MB)"
            if r.message and r.outcome is not Outcome.SWITCHED:
                line += f" — {r.message.splitlines()[0]}"
            typer.echo(line)
    bad = [r.node for r in results if not r.ok]
    summary = f"{len(results) - len(bad)} of {len(results)} hosts ok"
    if deployment.unrecorded is not None:
        sys.stderr.write(f"error: {summary}, but not all are recorded: {deployment.unrecorded}\n")
        raise typer.Exit(1)
    if bad:
        sys.stderr.write(f"error: {summary}; failed: {', '.join(bad)}\n")
        raise typer.Exit(1)
    typer.echo(summary, err=as_json)


def status_cmd(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt,
               as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per host: deployed generation, last result and time, and drift (checked live over ssh)."""
    from .status import status
    fleet = load_fleet(file, write=False)
    rows = status(fleet, select_nodes(fleet.config["nodes"], on))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        if not r["reachable"]:
            typer.echo(f"{r['node']:<16} unreachable: {r['error']}")
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["lastTime"])) if r["lastTime"] else "never"
        drift = "  DRIFT: runs something nixus did not deploy" if r["drift"] else ""
        typer.echo(f"{r['node']:<16} generation {r['generation']}, last {r['lastOutcome'] or 'none'} ({when}){drift}")


def history_cmd(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt,
                as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every recorded deploy, newest first, with each host's outcome."""
    fleet = load_fleet(file, write=False)
    nodes = select_nodes(fleet.config["nodes"], on) if on else None
    rows = State.for_reading(fleet.state_dir).history(nodes)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for d in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["started"]))
        rev = f" {d['git_rev'][:10]}{'+dirty' if d['git_dirty'] else ''}" if d["git_rev"] else ""
        unfinished = "" if d["finished"] is not None else " (did not finish: interrupted, or still running)"
        typer.echo(f"#{d['id']} {when} {d['user']} {d['goal']}{rev}{unfinished}")
        for h in d["hosts"]:
            typer.echo(f"    {h['node']}: {h['outcome']} {h['new_path'] or ''}")


def rollback_cmd(host: str = typer.Argument(..., help="The node to roll back."), file: Optional[str] = FileOpt,
                 to: Optional[int] = typer.Option(None, "--to", help="Generation (default: the previous one).")) -> None:
    """Switch a host back to an earlier generation, with confirm-or-rollback."""
    from .status import rollback
    fleet = load_fleet(file, write=False)
    if host not in fleet.config["nodes"]:
        raise NixusError(f"no node named `{host}'")
    typer.echo(rollback(fleet, host, to))
