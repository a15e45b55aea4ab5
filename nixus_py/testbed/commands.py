"""`nixus testbed up|down|status|reboot`: local test hosts for a fleet's nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .. import settings
from ..fleet.evaluate import find_fleet_file, load_fleet
from ..fleet.select import select_nodes
from .hosts import Testbed

app = typer.Typer(help="Local test hosts that behave like NixOS machines, one per node.", no_args_is_help=True)
MODULE_NAME = "testbed-hosts.py"

FileOpt = typer.Option(None, "-f", "--file", help="Fleet file (default ./fleet.py, else ./fleet.nix).")


def testbed_for(fleet_file: Path) -> Testbed:
    return Testbed(settings.private_dir(settings.state_dir(fleet_file)) / "testbed")


def write_fleet_module(fleet_file: Path, tb: Testbed) -> Path:
    """The generated module next to the fleet file, which the fleet imports when it exists."""
    path = fleet_file.resolve().parent / MODULE_NAME
    path.write_text(tb.fleet_module())
    return path


@app.command("up")
def up(file: Optional[str] = FileOpt, on: Optional[str] = typer.Option(None, "--on", help="Nodes to start.")) -> None:
    """Start a test host for each selected node and point the fleet at them."""
    fleet = load_fleet(file)
    nodes = select_nodes(fleet.config["nodes"], on)
    tb = testbed_for(fleet.file)
    hosts = tb.up(nodes, settings.nixpkgs_lib())
    module = write_fleet_module(fleet.file, tb)
    for h in hosts:
        typer.echo(f"{h.node:<20} root@{h.address}  (ssh -i {tb.deploy_key})")
    typer.echo(f"wrote {module}")


@app.command("down")
def down(file: Optional[str] = FileOpt) -> None:
    """Stop every test host and remove all it made (processes, namespaces, interfaces, files)."""
    fleet_file = find_fleet_file(file)
    testbed_for(fleet_file).down()
    (fleet_file.resolve().parent / MODULE_NAME).unlink(missing_ok=True)
    typer.echo("testbed down")


@app.command("status")
def status(file: Optional[str] = FileOpt, as_json: bool = typer.Option(False, "--json")) -> None:
    """Each test host: address, whether it runs and whether its sshd answers."""
    rows = testbed_for(find_fleet_file(file)).status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "running" if r["running"] else "stopped"
        ssh = "ssh ok" if r["ssh"] else "ssh down"
        typer.echo(f"{r['node']:<20} {r['address']:<15} {state}, {ssh}")
    if not rows:
        typer.echo("no test hosts")


@app.command("reboot")
def reboot(node: str, file: Optional[str] = FileOpt) -> None:
    """Restart a test host from the system its last `switch` or `boot` chose."""
    h = testbed_for(find_fleet_file(file)).reboot(node)
    typer.echo(f"{h.node} rebooted")
