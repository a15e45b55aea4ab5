"""The fleet evaluator through the `nixus` command: eval, nodes, options, and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import nixpkgs_lib, run_nixus


def _without_files(data: object) -> object:
    """Evaluated data without what names the fleet file (definition sites, the `why` of relations)."""
    if isinstance(data, dict):
        return {k: _without_files(v) for k, v in data.items() if k not in ("file", "why")}
    if isinstance(data, list):
        return [_without_files(v) for v in data]
    return data


def test_example_fleet_py_and_nix_evaluate_to_identical_results(example: Path) -> None:
    py = run_nixus("eval", "-f", "fleet.py", "--json", cwd=example)
    nx = run_nixus("eval", "-f", "fleet.nix", "--json", cwd=example)
    assert py.code == 0, py.err
    assert nx.code == 0, nx.err
    py_data, nix_data = json.loads(py.out), json.loads(nx.out)
    # `defaults` is a Python function in one and a Nix function (kept by reference) in the other.
    assert py_data.pop("defaults") != nix_data.pop("defaults")
    # `lock` is fleet.lock.json as read: the first run wrote it, the second read it.
    py_data.pop("lock"), nix_data.pop("lock")
    assert _without_files(py_data) == _without_files(nix_data)
    assert py_data["nodes"]["web1"]["host"] == "10.0.0.11" and py_data["nodes"]["gw"]["tags"] == ["edge"]


def test_cross_node_reads_resolve_in_both_fleet_files(example: Path) -> None:
    for fleet in ("fleet.py", "fleet.nix"):
        r = run_nixus("eval", "-f", fleet, "nodes.web2.configuration", "--json", cwd=example)
        assert r.code == 0, r.err
        defs = json.loads(r.out)["__deferredModule"]
        texts = [d["value"].get("environment", {}).get("etc", {}).get("upstream", {}).get("text") for d in defs]
        assert "10.100.0.2:80\n" in texts  # web1's address in the VPN, read by web2


def test_nodes_selection_by_tag_glob_and_name(example: Path) -> None:
    r = run_nixus("nodes", "--on", "@dns,web1", "--json", cwd=example)
    assert r.code == 0, r.err
    assert [n["name"] for n in json.loads(r.out)] == ["ns1", "ns2", "web1"]
    r = run_nixus("nodes", "--on", "w*", cwd=example)
    assert r.out.split()[0] == "web1"


def test_selector_matching_nothing_is_an_error(example: Path) -> None:
    r = run_nixus("nodes", "--on", "db*", cwd=example)
    assert r.code == 1
    assert "`db*' matches no node" in r.err


def test_options_lists_node_options_with_declaring_file(example: Path) -> None:
    r = run_nixus("options", "--json", cwd=example)
    assert r.code == 0, r.err
    docs = {d["name"]: d for d in json.loads(r.out)}
    port = docs["nodes.<name>.port"]
    assert port["type"].startswith("16 bit unsigned integer")
    assert port["default"] == "22"
    assert any("core.py" in f for f in port["declarations"])
    assert "deploy.parallel" in docs


def _fleet(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _fails(tmp_path: Path, name: str, text: str, *args: str) -> str:
    f = _fleet(tmp_path, name, text)
    r = run_nixus("eval", "-f", str(f), *(args or ("nodes",)), "--json", cwd=tmp_path)
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err
    assert len(r.err.splitlines()) < 25, r.err  # one screen
    return r.err


def test_type_error_names_option_and_line_py(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.py", 'modules = [{\n  "nodes": {\n    "a": {"port": "ssh"},\n  },\n}]\n')
    assert "nodes.a.port' is not of type `16 bit unsigned integer" in err
    assert "fleet.py:3" in err


def test_type_error_names_option_and_line_nix(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.nix", '{\n  nodes.a = {\n    port = "ssh";\n  };\n}\n')
    assert "nodes.a.port' is not of type `16 bit unsigned integer" in err
    assert "fleet.nix:3" in err


@pytest.mark.parametrize("option,node", [
    ("user", r'"user": "deploy\nevil::0:0::/root:/bin/sh"'),  # a passwd line of its own on the host
    ("host", r'"host": "10.0.0.3,*"'),  # in known_hosts: this host's key for every host
    ("host", r'"host": "-oProxyCommand=reboot"'),  # an option to ssh
    ("secrets.s.user", r'"secrets": {"s": {"source": "x", "user": "root\troot\t4755"}}'),  # manifest fields
    ("secrets.s.group", r'"secrets": {"s": {"source": "x", "group": "wheel "}}'),
    ("secrets.s.path", r'"secrets": {"s": {"source": "x", "path": "relative/path"}}'),
    ("secrets.s.path", r'"secrets": {"s": {"source": "x", "path": "/a\nb"}}'),
])
def test_a_name_or_path_bound_for_a_host_shell_or_manifest_takes_no_whitespace(
        tmp_path: Path, option: str, node: str) -> None:
    err = _fails(tmp_path, "fleet.py", f'modules = [{{"nodes": {{"a": {{\n  {node}}}}}}}]\n')
    assert f"nodes.a.{option}' is not of type `string matching the pattern" in err and "fleet.py:2" in err


def test_type_error_in_a_value_written_in_another_file_names_that_file(tmp_path: Path) -> None:
    # The node's attributes are written in node.nix, but are part of fleet.nix's module value.
    (tmp_path / "node.nix").write_text('{ sshPort }: {\n  host = "a";\n  port = sshPort;\n}\n')
    err = _fails(tmp_path, "fleet.nix", '{\n  nodes.a = import ./node.nix {\n    sshPort = "ssh";\n  };\n}\n')
    assert "nodes.a.port' is not of type `16 bit unsigned integer" in err
    assert "node.nix:3" in err


def test_undeclared_option_is_reported_with_suggestion(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.py", 'modules = [{"nodes": {"a": {"hots": "x"}}}]\n')
    assert "The option `nodes.a.hots' does not exist" in err
    assert "fleet.py:1" in err
    assert "Did you mean `nodes.a.host'" in err


def test_conflicting_definitions_name_both_files(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.py",
                 'modules = [\n  {"nodes": {"a": {"host": "x"}}},\n  {"nodes": {"a": {"host": "y"}}},\n]\n')
    assert "The option `nodes.a.host' has conflicting definition values" in err
    assert "fleet.py:2" in err and "fleet.py:3" in err


def test_cycle_lists_the_option_paths(tmp_path: Path) -> None:
    text = ("from nixus_py.evaluate import lazy\n"
            "def m(nodes, **_):\n"
            "    return {'nodes': {'a': {'host': lazy(lambda: nodes.b.host)},\n"
            "                      'b': {'host': lazy(lambda: nodes.a.host)}}}\n"
            "modules = [m]\n")
    err = _fails(tmp_path, "fleet.py", text)
    assert "infinite recursion" in err
    assert "nodes.a.host" in err and "nodes.b.host" in err


def test_cycle_through_nix_code_is_reported(tmp_path: Path) -> None:
    text = "{ config, ... }: {\n  nodes.a.host = config.nodes.b.host;\n  nodes.b.host = config.nodes.a.host;\n}\n"
    err = _fails(tmp_path, "fleet.nix", text)
    assert "infinite recursion" in err
    assert "nodes.a.host" in err


def test_syntax_error_in_fleet_py_names_line(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.py", 'modules = [\n  {"nodes": {\n}\n')
    assert "fleet.py:" in err and "syntax error" in err


def test_syntax_error_in_fleet_nix_names_file_and_line(tmp_path: Path) -> None:
    err = _fails(tmp_path, "fleet.nix", '{\n  nodes.a.host = "x"\n}\n')
    assert "fleet.nix:3" in err


def test_missing_fleet_file_is_an_error(tmp_path: Path) -> None:
    r = run_nixus("eval", "nodes", cwd=tmp_path)
    assert r.code == 1 and "no fleet file" in r.err


def test_every_module_of_a_fleet_file_counts_whatever_else_is_loaded(tmp_path: Path) -> None:
    # Anonymous modules are keyed by where they sit; a fleet file's own list must never share a
    # key with the modules nixus adds (a shared key silently dropped one of them).
    (tmp_path / "fleet.py").write_text("modules = [{'nodes': {'a': {}}}, {'nodes': {'b': {}}}, {'nodes': {'c': {}}}]\n")
    for modules_dir in ("/nonexistent", ""):
        r = run_nixus("nodes", "--json", cwd=tmp_path, env={"NIXUS_MODULES_DIR": modules_dir} if modules_dir else {})
        assert r.code == 0, r.err
        assert [n["name"] for n in json.loads(r.out)] == ["a", "b", "c"]


def _nix_runs(d: Path, text: str, attr: str) -> tuple[Any, int]:
    """`attr` of a fleet.nix, and how many nix-instantiate runs nixus completed for it (counted by
    a wrapper first on PATH)."""
    (d / "bin").mkdir(parents=True)
    log = d / "runs"
    wrapper = d / "bin" / "nix-instantiate"
    wrapper.write_text(f"#!/bin/sh\n{shutil.which('nix-instantiate')} \"$@\"\nrc=$?\necho $rc >> {log}\nexit $rc\n")
    wrapper.chmod(0o755)
    fleet = _fleet(d, "fleet.nix", text)
    r = run_nixus("eval", "-f", str(fleet), attr, "--json", cwd=d,
                  env={"PATH": f"{d / 'bin'}:{os.environ['PATH']}", "NIXUS_MODULES_DIR": "/nonexistent"})
    assert r.code == 0, r.err
    return json.loads(r.out), log.read_text().split().count("0")


def _nix_runs_for(tmp_path: Path, nodes: int) -> tuple[dict, int]:
    """The nodes of a fleet.nix with `defaults` and reads of other nodes, and its Nix runs."""
    names = [f"n{i}" for i in range(nodes)]
    body = "".join(f"    {n} = {{ port = {2000 + i}; peerPort = nodes.{names[(i + 1) % nodes]}.port; }};\n"
                   for i, n in enumerate(names))
    return _nix_runs(tmp_path / f"n{nodes}", "{ config, lib, ... }:\nlet inherit (config) nodes; in {\n"
                     "  options.nodes = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule {\n"
                     "    options.peerPort = lib.mkOption { type = lib.types.port; };\n  }); };\n"
                     "  config.defaults = { name, ... }: { tags = [ name ]; };\n"
                     f"  config.nodes = {{\n{body}  }};\n}}\n", "nodes")


def test_fleet_nix_takes_the_same_few_nix_runs_whatever_its_size(tmp_path: Path) -> None:
    # One to read the file, one to apply `defaults` to each node, one for what nodes read of others.
    for size in (2, 40):
        nodes, runs = _nix_runs_for(tmp_path, size)
        assert nodes["n1"]["peerPort"] == 2000 + 2 % size and nodes["n1"]["tags"] == ["n1"]
        assert runs == 3


def test_a_list_over_every_node_of_options_their_defaults_declare_takes_the_same_few_nix_runs(
        tmp_path: Path) -> None:
    """Each element of the list came out pending; asked for one per round, 49 nodes ran out of rounds."""
    runs = []
    for size in (2, 100, 400):
        nodes = " ".join(f'n{i}.host = "10.0.{i // 250}.{i % 250 + 1}";' for i in range(size))
        inventory, count = _nix_runs(tmp_path / f"n{size}", (
            "{ config, lib, ... }: {\n"
            "  options.inventory = lib.mkOption { type = lib.types.listOf lib.types.str; };\n"
            "  config = {\n"
            '    defaults = { lib, ... }: { options.role = lib.mkOption { type = lib.types.str; default = "web"; }; };\n'
            f"    nodes = {{ {nodes} }};\n"
            '    inventory = map (n: n + " " + config.nodes.${n}.role) (builtins.attrNames config.nodes);\n'
            "  };\n}\n"), "inventory")
        assert inventory == sorted(f"n{i} web" for i in range(size))
        runs.append(count)
    assert runs[0] == runs[1] == runs[2] and runs[0] <= 4, runs


def test_the_nix_that_nixus_starts_first_thing_is_the_one_the_fleet_nix_evaluation_uses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nixus_py import launch, settings
    from nixus_py.source import nixstart
    from nixus_py.source.nixfile import NixSession
    _fleet(tmp_path, "fleet.nix", '{ nodes.a.host = "x"; }\n')
    monkeypatch.chdir(tmp_path)
    fleet = launch._fleet_nix(["eval", "nodes", "--json"])  # no -f: ./fleet.nix, as the CLI finds it
    assert fleet == Path("fleet.nix") and launch._fleet_nix(["eval", "-f", "other.py"]) is None
    nixstart.start_early(fleet, settings.nixpkgs_lib())
    early = list(nixstart._early.values())
    session = NixSession(fleet.resolve())
    try:
        assert early and session._next is early[0] and not nixstart._early
    finally:
        session.stop_next()


def test_reading_a_renamed_option_warns_from_fleet_nix_as_from_fleet_py(tmp_path: Path) -> None:
    fleets = {"fleet.py": ("from nixus_py.evaluate import mkOption, mkRenamedOptionModule, types\n"
                           "modules = [mkRenamedOptionModule(['old'], ['new']),\n"
                           "           {'options': {'new': mkOption(type=types.int)}}, {'old': 5}]\n"),
              "fleet.nix": ("{ lib, ... }: {\n  imports = [ (lib.mkRenamedOptionModule [ \"old\" ] [ \"new\" ]) ];\n"
                            "  options.new = lib.mkOption { type = lib.types.int; };\n  config.old = 5;\n}\n")}
    for name, text in fleets.items():
        r = run_nixus("eval", "-f", str(_fleet(tmp_path, name, text)), "old", "--json", cwd=tmp_path,
                      env={"NIXUS_MODULES_DIR": "/nonexistent"})
        assert r.code == 0 and r.out.strip() == "5", r.err
        assert "Obsolete option `old' is used. It was renamed to `new'." in r.err, name


@pytest.mark.parametrize("name", ["../fleet", "/*x", "a,b", "@x", "web*", "a b", "", ".hidden", "-x", "a\nb", "é",
                                  "a..b", "a.", "a.-b", "x" * 64, "a." * 126 + "a"],  # the last two too long
                         ids=lambda name: repr(name)[:20])
def test_a_node_name_that_is_no_file_name_or_selector_is_an_error_and_writes_nothing(
        tmp_path: Path, name: str) -> None:
    (tmp_path / "fleet.py").write_text(f'modules = [{{"nodes": {{\n  {name!r}: {{"host": "192.0.2.1"}}}}}}]\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in (["render", "-o", "out"], ["eval", "nodes"], ["plan"]):
        r = run_nixus(*command, cwd=tmp_path)
        assert r.code == 1 and "Traceback" not in r.err, r.err
        assert "is not a valid node name" in r.err and "fleet.py:2" in r.err, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_generated_key_name_that_is_no_file_name_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text(
        'modules = [{"nodes": {"a": {"host": "192.0.2.1"}},\n  "generatedKeys": {"../../x": "wireguard"}}]\n')
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert "generatedKeys.\"../../x\"' is not a valid key name" in r.err and "fleet.py:2" in r.err, r.err
    assert not [p for p in tmp_path.rglob("*.key")]


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"


def test_host_keys_pasted_from_ssh_keyscan_lose_their_host_field(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text(
        f'modules = [{{"nodes": {{"a": {{"hostKeys": ["10.0.0.1 {HOST_KEY}", "{HOST_KEY} root@a\\n"]}}}}}}]\n')
    r = run_nixus("eval", "--json", "nodes.a.hostKeys", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out) == [HOST_KEY, f"{HOST_KEY} root@a\n"]


@pytest.mark.parametrize("key", [
    f"{HOST_KEY}\\n* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw",  # a line more
    "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB",  # the blob of another key type
    "ssh-ed25519 not-base64!", "# 10.0.0.1:22 SSH-2.0-OpenSSH_9.2p1", "",
])
def test_a_host_key_that_is_no_key_is_an_error_naming_the_option(tmp_path: Path, key: str) -> None:
    err = _fails(tmp_path, "fleet.py", f'modules = [{{"nodes": {{"a": {{\n  "hostKeys": ["{key}"]}}}}}}]\n')
    assert "nodes.a.hostKeys" in err and "is not of type" in err and "fleet.py:2" in err, err


def test_the_state_directory_and_database_are_the_users_alone(tmp_path: Path) -> None:
    """It holds generated private keys, and every rendered module and activation log."""
    import stat
    state = tmp_path / ".nixus-state"
    for directory in (state, state / "keys"):
        directory.mkdir(mode=0o755)  # as an earlier nixus made them
        directory.chmod(0o755)
    (tmp_path / "fleet.py").write_text(
        'modules = [{"nodes": {"a": {}, "b": {}}, "vpn": {"networks": {"n": {"subnet": "10.9.0.0/24", '
        '"members": {"a": {}, "b": {}}}}}}]\n')
    assert run_nixus("render", "-o", "out", cwd=tmp_path).code == 0
    assert run_nixus("history", cwd=tmp_path).code == 0
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(state) == 0o700
    assert mode(state / "state.sqlite3") == 0o600
    keys = [p for p in (state / "keys").rglob("*") if p.is_file()]
    assert keys and all(mode(k) == 0o600 for k in keys)
    key_dirs = [state / "keys", *(p for p in (state / "keys").rglob("*") if p.is_dir())]
    assert {str(d.relative_to(state)): mode(d) for d in key_dirs} == {str(d.relative_to(state)): 0o700 for d in key_dirs}


def test_a_fleet_nix_that_is_a_list_of_modules_evaluates_each(tmp_path: Path) -> None:
    (tmp_path / "a.nix").write_text('{ nodes.a.host = "192.0.2.1"; }\n')
    (tmp_path / "fleet.nix").write_text(
        '[\n  ./a.nix\n  ({ lib, ... }: { nodes.b.host = lib.mkDefault "192.0.2.2"; })\n  { nodes.b.port = 2222; }\n]\n')
    r = run_nixus("nodes", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert [(n["name"], n["host"], n["port"]) for n in json.loads(r.out)] == [
        ("a", "192.0.2.1", 22), ("b", "192.0.2.2", 2222)]
    err = _fails(tmp_path, "fleet.nix", '[\n  { nodes.a.host = "192.0.2.1"; }\n  {\n    nodes.a.port = "ssh";\n  }\n]\n')
    assert "nodes.a.port' is not of type" in err and "fleet.nix:4" in err


def test_a_module_file_of_a_node_gets_that_nodes_module_arguments(tmp_path: Path) -> None:
    """`nodes.a = ./a.nix` (and its imports) is applied with node a's `name` and `config`, not
    the fleet's (it used to read the fleet's `config`)."""
    (tmp_path / "a.nix").write_text('{ name, config, ... }: { imports = [ ./tags.nix ]; host = "192.0.2.9"; }\n')
    (tmp_path / "tags.nix").write_text('{ name, config, ... }: { tags = [ name config.host ]; }\n')
    (tmp_path / "fleet.nix").write_text("{ nodes.a = ./a.nix; }\n")
    r = run_nixus("eval", "--json", "nodes.a.tags", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out) == ["a", "192.0.2.9"]


@pytest.mark.parametrize("fleet,text", [
    ("fleet.nix", '{ lib, ... }: lib.mkMerge [\n  { nodes.a.host = "192.0.2.1"; }\n  { nodes.a.port = 2222; }\n]\n'),
    ("fleet.py", 'from nixus_py.evaluate import mkMerge\nmodules = [lambda **_: mkMerge([\n'
                 '    {"nodes": {"a": {"host": "192.0.2.1"}}}, {"nodes": {"a": {"port": 2222}}}])]\n'),
])
def test_a_module_whose_body_is_mk_merge_defines_config_as_in_nixpkgs(tmp_path: Path, fleet: str, text: str) -> None:
    (tmp_path / fleet).write_text(text)
    r = run_nixus("nodes", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert [(n["host"], n["port"]) for n in json.loads(r.out)] == [("192.0.2.1", 2222)]


# A module that reads the `options` argument, at the top and inside a submodule, as Nixus users do.
OPTIONS_MODULE = """{ lib, options, ... }: {
  options.zone = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; };
  options.unset = lib.mkOption { type = lib.types.str; description = "never set"; };
  options.things = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule ({ name, options, ... }: {
    options.x = lib.mkOption { type = lib.types.int; };
    options.seen = lib.mkOption { type = lib.types.str; default = "${name}: x ${
      if options.x.isDefined then "set to ${toString options.x.value}" else "unset"} (${options.x.type.name})"; };
  })); };
  options.report = lib.mkOption { type = lib.types.str; };
  config.things = { a.x = 3; b = { }; };
  config.zone = "example.org";
  config.report = builtins.toJSON {
    zone = [ options.zone.isDefined options.zone.value options.zone.default options.zone.type.description ];
    unset = options.unset.isDefined;
    declared = map toString options.unset.declarations != [ ];
  };
}
"""


def test_nix_modules_read_the_options_argument_as_nixpkgs_gives_it(tmp_path: Path) -> None:
    (tmp_path / "fleet.nix").write_text(OPTIONS_MODULE)
    expr = (f"let ev = (import {nixpkgs_lib()}).evalModules {{ modules = [ {tmp_path / 'fleet.nix'} ]; }}; in "
            "{ report = ev.config.report; seen = builtins.mapAttrs (_: t: t.seen) ev.config.things; }")
    expected = json.loads(subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                                         capture_output=True, text=True, check=True).stdout)
    shown = {attr: run_nixus("eval", "--json", attr, cwd=tmp_path) for attr in ("report", "things.a.seen", "things.b.seen")}
    assert all(r.code == 0 for r in shown.values()), [r.err for r in shown.values()]
    assert json.loads(shown["report"].out) == expected["report"]
    assert {k: json.loads(shown[f"things.{k}.seen"].out) for k in "ab"} == expected["seen"]
    assert expected["seen"] == {"a": "a: x set to 3 (int)", "b": "b: x unset (int)"}


def test_a_host_written_as_user_at_address_logs_in_as_that_user(tmp_path: Path) -> None:
    """Nixus's form of `host`; an explicit `user` still wins, as any definition beats a default."""
    (tmp_path / "fleet.nix").write_text(
        '{ nodes.a.host = "deploy@192.0.2.5"; nodes.b.host = "192.0.2.6"; '
        'nodes.c = { host = "root@192.0.2.7"; user = "ops"; }; }\n')
    r = run_nixus("nodes", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert [(n["name"], n["user"], n["host"]) for n in json.loads(r.out)] == [
        ("a", "deploy", "192.0.2.5"), ("b", "root", "192.0.2.6"), ("c", "ops", "192.0.2.7")]


def test_deploy_from_and_deploy_host_say_how_to_reach_a_node_from_where_nixus_runs(tmp_path: Path) -> None:
    """Nixus's deployFrom.<deployHost>, over a plain host; hasFastConnection is substituteOnTarget's opposite."""
    (tmp_path / "fleet.nix").write_text(
        '{\n  deployHost = "laptop";\n'
        '  nodes.a = { host = "root@203.0.113.5"; deployFrom.laptop = { host = "ops@192.168.1.5"; hasFastConnection = true; }; };\n'
        '  nodes.b = { host = "root@203.0.113.6"; hasFastConnection = false; };\n'
        '  nodes.c = { host = "192.0.2.7"; deployFrom.other.host = "10.9.9.9"; };\n'
        '  nodes.laptop = { host = "192.0.2.8"; enable = false; };\n}\n')
    r = run_nixus("eval", "--json", "nodes", cwd=tmp_path)
    assert r.code == 0, r.err
    got = {n: (v["address"], v["user"], v["substituteOnTarget"]) for n, v in json.loads(r.out).items()}
    assert got == {"a": ("192.168.1.5", "ops", False), "b": ("203.0.113.6", "root", True),
                   "c": ("192.0.2.7", "root", False), "laptop": ("localhost", "root", False)}


@pytest.mark.parametrize("option,value", [("postDeployScript", '"echo done"'), ("closurePaths", "{ }"),
                                          ("preparationScript", '"x"'), ("deployScript", '"x"')])
def test_an_option_of_nixus_that_nixus_does_not_run_is_an_error_saying_what_to_do(
        tmp_path: Path, option: str, value: str) -> None:
    err = _fails(tmp_path, "fleet.nix", f'{{\n  nodes.a.host = "192.0.2.1";\n  nodes.a.{option} = {value};\n}}\n')
    assert f"nodes.a.{option}' is an option of Nixus's that nixus does not run: " in err and "fleet.nix:3" in err


@pytest.mark.parametrize("text,command,expected", [
    ("import sys\nsys.exit(0)\n", "eval", "fleet.py:2: the fleet called sys.exit(0): a fleet file must not exit"),
    ("import sys\nmodules = [lambda **_: sys.exit(3)]\n", "eval", "fleet.py:2: the fleet called sys.exit(3)"),
    ("from nixus_py.evaluate import lazy\nmodules = [{'nodes': {'a': {'host': lazy(lambda: 1 / 0)}}}]\n", "eval",
     "fleet.py:2: ZeroDivisionError: division by zero"),
    ("modules = {'nodes': {}}\n", "eval", "`modules' must be a list of modules, not a dict"),
    ("modules = [{'nodes': {1: {}}}]\n", "eval", "`nodes.1' is not a valid node name"),
    ("modules = [{'nodes': {'a': {'configuration':\n  lambda pkgs, **_: {'environment': {'etc': {'x': {'text': f'{pkgs.hello}/bin'}}}}}}}]\n",
     "render", "fleet.py:2: `pkgs.hello' is Nix (a module function's argument), which Python cannot put into a string"),
    ("modules = [{'nodes': {'a': {'configuration':\n  lambda config, **_: {'x': 1} if config.services.bar.enable else {}}}}]\n",
     "render", "fleet.py:2: `config.services.bar.enable' is Nix (a module function's argument), which is not known"),
    ("modules = [{'nodes': {'a': {'configuration':\n  lambda **_: {}['missing']}}}]\n", "render", "fleet.py:2: KeyError: 'missing'"),
])
def test_an_error_of_the_fleets_own_code_names_its_line_whenever_it_runs(
        tmp_path: Path, text: str, command: str, expected: str) -> None:
    """A module body, a module function, a lazy value or a configuration function: never a traceback,
    never an exit 0 with nothing done."""
    (tmp_path / "fleet.py").write_text(text)
    r = run_nixus(*([command, "nodes"] if command == "eval" else [command, "-o", "out"]), cwd=tmp_path)
    assert r.code == 1 and "Traceback" not in r.err and len(r.err.splitlines()) < 25, r.err
    assert expected in r.err, r.err


def test_the_commands_that_only_read_change_no_file_and_lock_makes_the_keys(tmp_path: Path) -> None:
    """eval, nodes, options, graph and plan once wrote fleet.lock.json and generated private keys."""
    (tmp_path / "fleet.py").write_text(
        'modules = [{"nodes": {"a": {}, "b": {}}, "vpn": {"networks": {"n": {"subnet": "10.9.0.0/24", '
        '"members": {"a": {}, "b": {}}}}}}]\n')

    def files() -> list[str]:
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())

    before = files()
    for command in (["eval", "vpn"], ["nodes"], ["options"], ["graph"], ["eval", "--json", "nodes.a.configuration"]):
        r = run_nixus(*command, cwd=tmp_path)
        assert r.code == 0, r.err
    assert files() == before
    r = run_nixus("lock", cwd=tmp_path)
    assert r.code == 0 and "fleet.lock.json updated" in r.out, r.err
    made = files()
    assert "fleet.lock.json" in made and any(f.startswith(".nixus-state/keys/") for f in made)
    assert run_nixus("lock", cwd=tmp_path).out.strip().endswith("up to date")
    lock = json.loads((tmp_path / "fleet.lock.json").read_text())
    shown = json.loads(run_nixus("eval", "--json", "lock", cwd=tmp_path).out)
    assert shown == lock and files() == made


def test_a_selector_that_names_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text('modules = [{"nodes": {"a": {}}}]\n')
    r = run_nixus("nodes", "--on", ",,,", cwd=tmp_path)
    assert r.code == 1 and "names no node" in r.err, (r.out, r.err)


@pytest.mark.parametrize("secrets,expected", [
    ('{"s": {"source": "missing"}}', "cannot read"),
    ('{"s": {"source": "adir"}}', "is not a regular file"),
    ('{"s": {"source": "afifo"}}', "is not a regular file"),  # reading it would wait forever
    ('{"s": {"source": "x", "path": "/etc/k"}, "t": {"source": "x", "path": "/etc/k"}}', "is the path of"),
])
def test_a_secret_that_cannot_be_delivered_fails_the_plan(tmp_path: Path, secrets: str, expected: str) -> None:
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "afifo")
    (tmp_path / "x").write_text("secret\n")
    (tmp_path / "fleet.py").write_text(f'modules = [{{"nodes": {{"a": {{"secrets": {secrets}}}}}}}]\n')
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 1 and expected in r.err and "Traceback" not in r.err, r.err


@pytest.mark.parametrize("lock,expected", [
    ('{"vpn": "x"}', "fleet.lock.json: vpn is not an object"),
    ('{"vpn": {"n": {"a": 5}}}', "fleet.lock.json: vpn.n.a is not an object"),
    ('{"keys": []}', "fleet.lock.json: keys is not an object"),
    ('{"dns": {"example.org.": 3}}', 'fleet.lock.json: dns."example.org." is not an object'),
])
def test_a_damaged_lock_entry_is_an_error_naming_it(tmp_path: Path, lock: str, expected: str) -> None:
    (tmp_path / "fleet.lock.json").write_text(lock)
    (tmp_path / "fleet.py").write_text(
        'modules = [{"nodes": {"a": {"host": "192.0.2.1"}, "b": {"host": "192.0.2.2"}},'
        ' "vpn": {"networks": {"n": {"subnet": "10.9.0.0/24", "members": {"a": {}, "b": {}}}}},'
        ' "dns": {"zones": {"example.org": {"primary": "a"}}}}]\n')
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1 and expected in r.err and "Traceback" not in r.err, r.err


def test_undecodable_text_a_lone_surrogate_and_an_unusable_state_directory_are_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_bytes(b"\xff\xfe modules = []\n")
    r = run_nixus("eval", "-f", "bad.py", "nodes", cwd=tmp_path)
    assert r.code == 1 and "not UTF-8 text" in r.err and "Traceback" not in r.err, r.err
    (tmp_path / "fleet.py").write_text(
        'modules = [{"nodes": {"a": {"configuration": {"environment": {"etc": {"x": {"text": "\\ud800"}}}}}}}]\n')
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1 and "which is no Unicode character" in r.err and "Traceback" not in r.err, r.err
    (tmp_path / "fleet.py").write_text('modules = [{"nodes": {"a": {}}}]\n')
    (tmp_path / "a-file").write_text("")
    r = run_nixus("--state-dir", str(tmp_path / "a-file" / "state"), "history", cwd=tmp_path)
    assert r.code == 1 and "as nixus's state directory" in r.err and "Traceback" not in r.err, r.err


@pytest.mark.parametrize("limit,message", [
    ({"NIXUS_NIX_TIMEOUT": "3"}, "Nix took more than 3 s to evaluate"),
    ({"NIXUS_NIX_MEMORY_MB": "600"}, "Nix ran out of memory evaluating"),
])
def test_a_value_that_never_ends_stops_at_nixuss_limits_on_nix(tmp_path: Path, limit: dict, message: str) -> None:
    """A value too big to ever serialize (50^6 attributes) runs until a limit stops Nix: never a hang."""
    (tmp_path / "fleet.nix").write_text(
        "{ lib, ... }: {\n  options.x = lib.mkOption { type = lib.types.anything; };\n"
        "  config.x = let wide = n: lib.genAttrs (map toString (lib.range 1 50)) (_: if n == 0 then n else wide (n - 1));\n"
        "    in wide 6;\n}\n")
    env = {"NIXUS_NIX_TIMEOUT": "60", "NIXUS_NIX_MEMORY_MB": "4096", **limit}
    r = run_nixus("eval", "--json", "x", cwd=tmp_path, env=env)
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert message in r.err, r.err


def test_a_nix_file_used_in_a_submodule_gets_that_submodules_config_and_name(tmp_path: Path) -> None:
    """`defaults = ./d.nix`: the file's function is applied per node, as nixpkgs applies it (it got
    the fleet's own config before)."""
    (tmp_path / "fleet.nix").write_text('{ defaults = ./d.nix; nodes.a.host = "10.0.0.1"; nodes.b.host = "10.0.0.2"; }\n')
    (tmp_path / "d.nix").write_text("{ name, config, ... }: { tags = [ name config.host ]; }\n")
    r = run_nixus("eval", "--json", "nodes.b.tags", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out) == ["b", "10.0.0.2"]


def _nix_processes_reading(path: Path) -> list[int]:
    """The pids of running processes whose command line names `path`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_killed_nixus_leaves_no_nix_evaluation_running(tmp_path: Path) -> None:
    """SIGKILL is the one signal nixus cannot clean up after: the kernel ends its Nix too."""
    fleet = tmp_path / "fleet.nix"
    fleet.write_text("let slow = builtins.foldl' (n: _: n + builtins.length (builtins.genList (x: x) 1000)) 0 "
                     "(builtins.genList (x: x) 1000000); in builtins.seq slow { nodes.a.host = \"x\"; }\n")
    exe = shutil.which("nixus") or "nixus"
    nixus = subprocess.Popen([exe, "eval"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if _nix_processes_reading(fleet):
                break
            time.sleep(0.05)
        assert _nix_processes_reading(fleet), "nixus started no Nix for the fleet"
    finally:
        nixus.kill()
        nixus.wait()
    for _ in range(100):
        if not _nix_processes_reading(fleet):
            break
        time.sleep(0.05)
    assert _nix_processes_reading(fleet) == []
