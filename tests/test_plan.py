"""`nixus plan`: per host, each changed option path with old → new and the fleet fact behind it."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_nixus

from nixus_py.fleet.evaluate import load_fleet
from nixus_py.record.state import State
from nixus_py.render.node import render_node
from nixus_py.render.settings import node_settings, settings_json

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"


def _write(tmp_path: Path, members: str, grant: bool = True) -> None:
    access = (f"'ssh': {{'access': {{'laptop': {{'keys': {{'alice': {{'publicKey': '{KEY} alice',\n"
              f"    'hasAccessTo': {{'web1': {{'root': True}}}}}}}}}}}}}},\n") if grant else ""
    (tmp_path / "fleet.py").write_text(
        "modules = [{\n"
        "  'nodes': {'laptop': {}, 'web1': {}, 'a': {}, 'b': {}, 'c': {}},\n"
        f"  {access}"
        f"  'vpn': {{'networks': {{'m': {{'subnet': '10.7.0.0/24', 'members': {members}}}}}}},\n"
        "}]\n")


def _record_as_deployed(tmp_path: Path) -> None:
    """What a successful deploy records for every node (the path `nixus deploy` takes)."""
    fleet = load_fleet(tmp_path / "fleet.py")
    state = State(fleet.state_dir)
    deploy = state.begin_deploy(fleet.file, "switch")
    nodes = fleet.config["nodes"]
    for name in nodes:
        conf = nodes[name]["configuration"]
        state.record_host(deploy, name, rendered=render_node(name, conf, fleet.file, tmp_path),
                          settings=settings_json(node_settings(conf, fleet.file)), outcome="switched")
    state.finish_deploy(deploy)


def test_never_deployed_hosts_show_as_new_and_exit_2(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 2, r.err
    assert "web1: new host, never deployed" in r.out


def test_nothing_changed_exits_0(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    _record_as_deployed(tmp_path)
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 0, r.out + r.err
    assert "Summary: 0 hosts change (none), 5 unchanged" in r.out


def test_revoking_a_grant_shows_the_removed_key_and_why(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    _record_as_deployed(tmp_path)
    _write(tmp_path, "{'a': {}, 'b': {}}", grant=False)
    r = run_nixus("plan", "--json", cwd=tmp_path)
    assert r.code == 2
    data = json.loads(r.out)
    assert data["changed"] == ["web1"]  # web1 has no host keys, so laptop trusts nothing new
    web1 = next(h for h in data["hosts"] if h["node"] == "web1")
    assert {"path": "users.users.root.openssh.authorizedKeys.keys", "kind": "removed", "old": f'"{KEY} alice"',
            "new": None, "why": "ssh.access.laptop.keys.alice.hasAccessTo.web1.root (fleet.py:4)"} in web1["changes"]


def test_adding_a_mesh_member_changes_every_other_member(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    _record_as_deployed(tmp_path)
    _write(tmp_path, "{'a': {}, 'b': {}, 'c': {}}")
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 2
    assert "Summary: 3 hosts change (a, b, c), 2 unchanged (laptop, web1)." in r.out
    section_a = r.out.split("a: ")[1].split("\nb: ")[0]
    assert "networking.wireguard.interfaces.wg-m.peers: + " in section_a
    assert "because peer c: vpn.networks.m.members.c (fleet.py:" in section_a
    assert "c: new host" not in r.out  # c was deployed before, just not in the network


def test_selector_limits_the_plan(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    r = run_nixus("plan", "--on", "a", "--json", cwd=tmp_path)
    assert [h["node"] for h in json.loads(r.out)["hosts"]] == ["a"]


def test_a_module_nixus_cannot_render_is_still_planned_setting_by_setting(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    _record_as_deployed(tmp_path)
    # A Python module that computes with a config value: applied to the placeholders that render
    # as Nix arguments, it fails, so the plan cannot compare rendered modules for laptop.
    fleet = tmp_path / "fleet.py"
    fleet.write_text(fleet.read_text().replace(
        "'laptop': {}", "'laptop': {'configuration': lambda config, **_: "
                        "{'networking': {'hostName': config.networking.domain + '-laptop'}}}"))
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 2, r.err
    assert "laptop: 1 changes\n  <module fleet.py:2>: + <function> because fleet.py:2\n" in r.out
    assert "Summary: 1 hosts change (laptop), 4 unchanged (a, b, c, web1)." in r.out


def test_an_unchanged_host_that_imports_a_file_says_the_plan_did_not_read_it(tmp_path: Path) -> None:
    """The file may have changed since the deploy: the plan must not pass the host off as known."""
    (tmp_path / "fleet.py").write_text(
        "from nixus_py import nix\n"
        "modules = [{'nodes': {'a': {'configuration': nix.path('./a.nix')}, 'b': {}}}]\n")
    (tmp_path / "a.nix").write_text("{ ... }: { }\n")
    fleet = load_fleet(tmp_path / "fleet.py")
    state = State(fleet.state_dir)
    deploy = state.begin_deploy(fleet.file, "switch")
    for name in ("a", "b"):
        conf = fleet.config["nodes"][name]["configuration"]
        state.record_host(deploy, name, rendered=render_node(name, conf, fleet.file, fleet.rendered_dir),
                          settings=settings_json(node_settings(conf, fleet.file)), outcome="switched")
    state.finish_deploy(deploy)
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 0, r.out + r.err
    assert ("a: no setting changed, but it reads files that a plan does not evaluate (a deploy builds it "
            "and compares the systems)\n") in r.out
    assert "b:" not in r.out
    assert [h["unread"] for h in json.loads(run_nixus("plan", "--json", cwd=tmp_path).out)["hosts"]] == [["files"], []]


def test_a_deleted_state_database_is_recreated_and_said_so_once(tmp_path: Path) -> None:
    _write(tmp_path, "{'a': {}, 'b': {}}")
    _record_as_deployed(tmp_path)
    for db in (tmp_path / ".nixus-state").glob("state.sqlite3*"):
        db.unlink()
    first = run_nixus("history", cwd=tmp_path)
    assert first.code == 0 and "starts a new one, and its history at #1" in first.err, first.err
    again = run_nixus("history", cwd=tmp_path)
    assert again.code == 0 and "note:" not in again.err
