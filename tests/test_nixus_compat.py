"""A Nixus fleet runs unchanged: each fleet in tests/nixus_fleets/ is evaluated by real Nixus (the
oracle's crosshost.nix) and rendered by nixus, and the rendered modules, read by the real module
system, give every enabled node the same cross-host settings as Nixus does."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, eval_rendered, run_nixus

pytestmark = pytest.mark.nix

FLEETS = ROOT / "tests" / "nixus_fleets"


def _settings(config: dict) -> dict:
    """What crosshost.nix prints of a node, read from the node's module as nixus rendered it."""
    keys = {u: v["openssh"]["authorizedKeys"]["keys"] for u, v in config["users"]["users"].items()
            if v["openssh"]["authorizedKeys"]["keys"]}
    known = {name: {"hostNames": k["hostNames"], "publicKey": k["publicKey"]}
             for name, k in config["programs"]["ssh"]["knownHosts"].items()}
    return {"authorizedKeys": keys, "knownHosts": known}


def _without_reach_address(known: dict, nodes: dict) -> dict:
    """nixus's known-hosts names less the target's own `host`, which nixus adds last when Nixus's
    names lack it (nixus connects to hosts by it)."""
    out = {}
    for name, k in known.items():
        target = next(n for n in nodes if name == n or name.startswith(n + "-"))
        names = k["hostNames"]
        if names and names[-1] == nodes[target] and names.count(nodes[target]) == 1:
            names = names[:-1]
        out[name] = {**k, "hostNames": names}
    return out


@pytest.mark.parametrize("fleet", sorted(p.name for p in FLEETS.glob("*.nix")))
def test_a_nixus_fleet_gives_every_node_the_settings_nixus_gives_it(
        fleet: str, tmp_path: Path, nixus_oracle: Callable[[Path], dict]) -> None:
    shutil.copy(FLEETS / fleet, tmp_path / "fleet.nix")
    expected = nixus_oracle(tmp_path / "fleet.nix")["nodes"]
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    nodes = json.loads(run_nixus("nodes", "--json", cwd=tmp_path).out)
    hosts = {n["name"]: n["host"] for n in nodes}
    enabled = [n["name"] for n in nodes if n["enable"]]
    # Nixus also makes an (enabled) node of a machine that is no node but holds a key.
    assert set(enabled) <= set(expected) and enabled
    for node in enabled:
        got = _settings(eval_rendered(tmp_path / "out" / f"{node}.nix"))
        got["knownHosts"] = _without_reach_address(got["knownHosts"], hosts)
        assert got == {k: expected[node][k] for k in ("authorizedKeys", "knownHosts")}, node
