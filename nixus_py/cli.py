"""The `nixus` command line (typer)."""

from __future__ import annotations

import gc
import importlib
import json
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import typer

from . import settings
from .evaluate.errors import NixusError, show_option
from .interrupts import interrupt
from .evaluate.modules import Level, Option
from .evaluate.options import MISSING
from .fleet.formats import node_file
from .fleet.evaluate import load_fleet
from .fleet.lock import lock_path
from .fleet.select import select_nodes
from .nixlang import to_nix
from .present import get_path, parse_attr_path, to_data
from .source.pyfile import user_error

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Evaluate, render, build and deploy a NixOS fleet.")

FileOpt = typer.Option(None, "-f", "--file", help="Fleet file (default ./fleet.py, else ./fleet.nix).")
OnOpt = typer.Option(None, "--on", help="Nodes to act on: names, globs and @tags, comma-separated.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")


@app.callback()
def _global(nixpkgs_lib: Optional[str] = typer.Option(
        None, "--nixpkgs-lib", envvar="NIXUS_NIXPKGS_LIB", help="nixpkgs' lib directory (for .nix files)."),
        state_dir: Optional[str] = typer.Option(
        None, "--state-dir", envvar="NIXUS_STATE_DIR", help="nixus's state (default .nixus-state beside the fleet).")
        ) -> None:
    settings.set_nixpkgs_lib(nixpkgs_lib)
    settings.set_state_dir(state_dir)


@app.command("eval")
def eval_cmd(attrpath: str = typer.Argument("", help="Attribute path into the fleet config, e.g. nodes.web1.host."),
             file: Optional[str] = FileOpt, as_json: bool = JsonOpt) -> None:
    """Print the value at ATTRPATH of the evaluated fleet config (like `nix eval`)."""
    config = load_fleet(file, write=False).config
    path = parse_attr_path(attrpath)
    try:
        value = get_path(config, path)
    except KeyError as e:
        raise NixusError(f"attribute `{e.args[0]}' does not exist in the fleet config") from None
    data = to_data(value)
    typer.echo(json.dumps(data, indent=None if as_json else 2, sort_keys=True) if as_json else to_nix(data, indent=2))


@app.command("nodes")
def nodes_cmd(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt, as_json: bool = JsonOpt) -> None:
    """List the selected nodes with host, port and tags."""
    nodes = load_fleet(file, write=False).config["nodes"]
    rows = [{"name": n, "host": nodes[n]["address"], "port": nodes[n]["port"], "user": nodes[n]["user"],
             "tags": list(nodes[n]["tags"]), "enable": nodes[n]["enable"]} for n in select_nodes(nodes, on)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        tags = " ".join("@" + t for t in r["tags"])
        off = "" if r["enable"] else "  (disabled)"
        typer.echo(f"{r['name']:<20} {r['user']}@{r['host']}:{r['port']}  {tags}{off}".rstrip())


@app.command("render")
def render_cmd(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt,
               out: str = typer.Option("rendered", "-o", "--out", help="Directory for the <node>.nix files.")) -> None:
    """Write one NixOS module per selected node to OUT/<node>.nix."""
    from .render.node import Renderer  # imported by the commands that need them: startup time
    fleet = load_fleet(file)
    nodes = fleet.config["nodes"]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(fleet.file, out_dir)
    for name in select_nodes(nodes, on):
        typer.echo(str(renderer.write(name, nodes[name]["configuration"]).module))


@app.command("plan")
def plan_cmd(file: Optional[str] = FileOpt, on: Optional[str] = OnOpt, as_json: bool = JsonOpt) -> None:
    """What a deploy would change, host by host, and why. Exit 0: no changes, 2: changes, 1: error."""
    from .plan import plan_fleet, plan_text
    from .record.state import State
    fleet = load_fleet(file, write=False)
    nodes = select_nodes(fleet.config["nodes"], on)
    plan = plan_fleet(fleet, nodes, State.for_reading(fleet.state_dir))
    if as_json:
        typer.echo(json.dumps({"hosts": [h.model_dump() for h in plan.hosts], "changed": plan.changed,
                               "unchanged": plan.unchanged}, indent=2))
    else:
        typer.echo(plan_text(plan), nl=False)
    raise typer.Exit(2 if plan.changed else 0)


@app.command("lock")
def lock_cmd(file: Optional[str] = FileOpt) -> None:
    """Make the key pairs the fleet needs and bring fleet.lock.json up to date (render, build and
    deploy do it too; the commands that only read change no file)."""
    fleet = load_fleet(file)
    typer.echo(f"{lock_path(fleet.file)} {'updated' if fleet.lock_changed else 'up to date'}")


@app.command("graph")
def graph_cmd(file: Optional[str] = FileOpt,
              fmt: str = typer.Option("text", "--format", help="text, dot or json.")) -> None:
    """Nodes and their relations (ssh grants, VPN peerings, DNS transfers, deployAfter) and deploy waves."""
    from .fleet.graph import fleet_graph, graph_data, graph_dot, graph_text  # networkx takes a while to import
    g = fleet_graph(load_fleet(file, write=False))
    if fmt == "json":
        typer.echo(json.dumps(graph_data(g), indent=2))
    elif fmt == "dot":
        typer.echo(graph_dot(g), nl=False)
    elif fmt == "text":
        typer.echo(graph_text(g), nl=False)
    else:
        raise NixusError(f"--format {fmt}: expected text, dot or json")


@app.command("options")
def options_cmd(file: Optional[str] = FileOpt, as_json: bool = JsonOpt,
                markdown: bool = typer.Option(False, "--markdown", help="Markdown, like the NixOS manual.")) -> None:
    """Every option of the fleet with type, default, description and where it is declared."""
    ev = load_fleet(file, write=False).evaluation
    docs = list(_walk_options(ev.root))
    if as_json:
        typer.echo(json.dumps(docs, indent=2))
    elif markdown:
        for d in docs:
            typer.echo(f"## `{d['name']}`\n\n{d['description'] or ''}\n\n*Type:* {d['type']}\n")
            if "default" in d:
                typer.echo(f"*Default:* `{d['default']}`\n")
            typer.echo("*Declared by:* " + ", ".join(f"`{x}`" for x in d["declarations"]) + "\n")
    else:
        for d in docs:
            default = f"  (default: {d['default']})" if "default" in d else ""
            typer.echo(f"{d['name']}: {d['type']}{default}\n    {d['description'] or ''}")


# Commands implemented in other packages, as (module, attribute). Their modules import asyncssh,
# pydantic and rich, which takes longer than evaluating a small fleet, so they are imported only
# when the command line may run or list them (`nixus deploy`, `nixus --help`), not for `nixus eval`.
COMMANDS_ELSEWHERE: dict[str, tuple[str, str]] = {
    "testbed": (".testbed.commands", "app"),
    "build": (".build.commands", "build"),
    "deploy": (".deploy.commands", "deploy"),
    "status": (".deploy.commands", "status_cmd"),
    "history": (".deploy.commands", "history_cmd"),
    "rollback": (".deploy.commands", "rollback_cmd"),
}
_GLOBAL_OPTIONS_WITH_VALUE = ("--nixpkgs-lib", "--state-dir")


def add_commands_elsewhere(args: list[str]) -> None:
    """Register COMMANDS_ELSEWHERE: only the one that `args` runs, none when it runs a command
    defined in this file, all when it names none (help, or a command to be told is unknown)."""
    if _runs_command_here(args):
        return
    named = _command_in(args)
    wanted = {named: COMMANDS_ELSEWHERE[named]} if named in COMMANDS_ELSEWHERE else COMMANDS_ELSEWHERE
    for name, (module, attribute) in wanted.items():
        command = getattr(importlib.import_module(module, __package__), attribute)
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)


def _runs_command_here(args: list[str]) -> bool:
    """Whether `args` runs a command defined in this file: one that evaluates, prints and exits."""
    return _command_in(args) in {c.name for c in app.registered_commands}


def _command_in(args: list[str]) -> str | None:
    """The command that `args` names: its first word that is not an option or an option's value."""
    words = iter(args)
    for word in words:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _walk_options(level: Level) -> Any:
    """Option docs below a level, descending into submodule types (with `<name>` placeholders)."""
    for name in sorted(level.decls_by_name):
        if name == "_module":
            continue
        node = level.child(name)
        if isinstance(node, Level):
            yield from _walk_options(node)
            continue
        yield from _option_docs(node)


def _option_docs(opt: Option) -> Any:
    decl = opt.decl
    if decl.internal or decl.visible is False:
        return
    doc: dict[str, Any] = {"name": show_option(opt.loc), "type": decl.type.description,
                           "description": decl.description,
                           "declarations": sorted({str(x) for x in decl.declarations})}
    if decl.defaultText is not MISSING:
        doc["default"] = decl.defaultText if isinstance(decl.defaultText, str) else to_nix(decl.defaultText)
    elif decl.default is not MISSING:
        try:
            doc["default"] = to_nix(to_data(decl.default))
        except NixusError:
            doc["default"] = "<computed>"
    yield doc
    subs = decl.type.get_sub_options(opt.loc)
    if isinstance(subs, Mapping) and hasattr(subs, "_ev"):
        yield from _walk_options(subs._ev.root)  # type: ignore[attr-defined]


def _run(fn: Callable[[], Any]) -> int:
    """Run the CLI in a thread with a large stack: deep option chains recurse deeply."""
    result: dict[str, int] = {"code": 0}
    done = threading.Event()

    def target() -> None:
        try:
            try:
                fn()
            except (Exception, SystemExit) as e:
                # What the fleet's own code raised is the fleet's error, at its line (an error of
                # nixus's that already names where it comes from stays as it is).
                if isinstance(e, NixusError) and getattr(e, "files", None):
                    raise
                raise user_error(e) or e
        except SystemExit as e:
            result["code"] = int(e.code or 0) if not isinstance(e.code, str) else 1
        except NixusError as e:
            sys.stderr.write(f"error: {e}\n")
            result["code"] = 1
        except KeyboardInterrupt:
            result["code"] = 130
        except Exception:  # a bug in nixus: show it, and never exit 0
            traceback.print_exc()
            result["code"] = 1
        finally:
            done.set()

    sys.setrecursionlimit(200_000)
    threading.stack_size(512 * 1024 * 1024)
    t = threading.Thread(target=target, daemon=True)
    t.start()
    interrupted = False
    # Wait on an Event, not on t.join(): a Ctrl-C that interrupts join() can leave the thread
    # looking finished while it still runs (CPython 3.11), and we would exit in mid-deploy.
    while not done.is_set():
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            # The first Ctrl-C goes to whoever can wind down cleanly (a deploy lets switching hosts
            # finish or roll back); a second one, or nobody listening, stops at once.
            if interrupted or not interrupt():
                return 130
            interrupted = True
            sys.stderr.write("interrupted: no new hosts will be started; waiting for hosts in flight\n")
    return result["code"]


def main() -> None:
    args = sys.argv[1:]
    add_commands_elsewhere(args)
    # A command evaluates the fleet once, and almost every object it makes lives until it exits:
    # the cyclic GC mostly re-scans live data (at its default pace, a collection per 700 new
    # objects, a third of the run on a large fleet). Objects from imports never become garbage.
    gc.freeze()
    one_shot = _runs_command_here(args)
    if one_shot:
        # These print and exit, leaving next to no cycles (3 MB on a 1000-node render); even one
        # collection per 50 000 objects was a sixth of that render.
        gc.disable()
    else:
        gc.set_threshold(50_000)  # deploys run for minutes: collect, at a slower pace
    code = _run(lambda: app(standalone_mode=True))
    gc.freeze()  # the process exits now: the OS frees its objects faster than a last collection
    if one_shot:
        gc.enable()  # for a caller that runs main in its own process (the conformance suite)
    sys.exit(code)
