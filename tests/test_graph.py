"""`nixus graph`: relations between nodes and the deploy waves they imply."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_nixus


def _graph(tmp_path: Path, nodes: str, *args: str):
    (tmp_path / "fleet.py").write_text(f"modules = [{{'nodes': {nodes}}}]\n")
    return run_nixus("graph", *args, cwd=tmp_path)


def test_deploy_after_orders_waves(tmp_path: Path) -> None:
    r = _graph(tmp_path, "{'db': {}, 'web': {'deployAfter': ['db']}, 'lb': {'deployAfter': ['web']}, 'x': {}}",
               "--format", "json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["waves"] == [["db", "x"], ["web"], ["lb"]]
    assert {"from": "db", "to": "web", "kind": "deployAfter", "orders": True,
            "why": "nodes.web.deployAfter"} in data["edges"]


def test_deploy_order_cycle_names_the_nodes(tmp_path: Path) -> None:
    r = _graph(tmp_path, "{'a': {'deployAfter': ['b']}, 'b': {'deployAfter': ['a']}}")
    assert r.code == 1
    assert "the deploy order has a cycle: a -> b -> a (by nodes.b.deployAfter, nodes.a.deployAfter; " \
           "defined at fleet.py:1)" in r.err


def test_deploy_after_unknown_node_is_an_error(tmp_path: Path) -> None:
    r = _graph(tmp_path, "{'a': {'deployAfter': ['zz']}}")
    assert r.code == 1 and "`nodes.a.deployAfter' names `zz', which is not a node; defined at fleet.py:1" in r.err


def test_dot_output_draws_ssh_grants(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"
    (tmp_path / "fleet.py").write_text(
        f"modules = [{{'nodes': {{'a': {{}}, 'b': {{}}}}, 'ssh': {{'access': {{'a': {{'keys': {{'k': "
        f"{{'publicKey': '{key}', 'hasAccessTo': {{'b': {{'root': True}}}}}}}}}}}}}}}}]\n")
    r = run_nixus("graph", "--format", "dot", cwd=tmp_path)
    assert r.code == 0, r.err
    assert '"a" -> "b" [label="ssh", style=dashed];' in r.out
