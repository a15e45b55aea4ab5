"""A Nixus fleet runs unchanged: each fleet in tests/nixus_fleets/ is evaluated by real Nixus (the
oracle's crosshost.nix) and rendered by nixus, and the rendered modules, read by the real module
system, give every enabled node the same cross-host settings as Nixus does (authorized keys,
known hosts, WireGuard interfaces and peers, firewall, NAT), and every DNS zone the same records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, eval_rendered, nsd_checkzone, run_nixus

pytestmark = pytest.mark.nix

FLEETS = ROOT / "tests" / "nixus_fleets"


def _settings(config: dict) -> dict:
    """What crosshost.nix prints of a node, read from the node's module as nixus rendered it."""
    keys = {u: v["openssh"]["authorizedKeys"]["keys"] for u, v in config["users"]["users"].items()
            if v["openssh"]["authorizedKeys"]["keys"]}
    known = {name: {"hostNames": k["hostNames"], "publicKey": k["publicKey"]}
             for name, k in config["programs"]["ssh"]["knownHosts"].items()}
    networking = config["networking"]
    wireguard = {name: {"address": i["address"], "listenPort": i["listenPort"],
                        "peers": [{k: p[k] for k in ("publicKey", "allowedIPs", "endpoint")} for p in i["peers"]]}
                 for name, i in networking["wg-quick"]["interfaces"].items()}
    firewall, nat = networking["firewall"], networking["nat"]
    return {"authorizedKeys": keys, "knownHosts": known, "wireguard": wireguard,
            # NixOS's firewall keeps its ports sorted and without repeats.
            "firewall": {"allowedUDPPorts": sorted(set(firewall["allowedUDPPorts"])),
                         "trustedInterfaces": firewall["trustedInterfaces"]},
            "nat": {k: nat[k] for k in ("enable", "externalInterface", "internalInterfaces")}}


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


def _render(fleet: str, tmp_path: Path) -> list[dict]:
    """Render a fleet of the corpus from its copy in `tmp_path` (which the oracle reads too): its
    nodes, as `nixus nodes --json` lists them."""
    shutil.copy(FLEETS / fleet, tmp_path / "fleet.nix")
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    return json.loads(run_nixus("nodes", "--json", cwd=tmp_path).out)


@pytest.mark.parametrize("fleet", sorted(p.name for p in FLEETS.glob("*.nix")))
def test_a_nixus_fleet_gives_every_node_the_settings_nixus_gives_it(
        fleet: str, tmp_path: Path, nixus_oracle: Callable[..., dict]) -> None:
    nodes = _render(fleet, tmp_path)
    expected = nixus_oracle(tmp_path / "fleet.nix")["nodes"]
    hosts = {n["name"]: n["host"] for n in nodes}
    enabled = [n["name"] for n in nodes if n["enable"]]
    # Nixus also makes an (enabled) node of a machine that is no node but holds a key.
    assert set(enabled) <= set(expected) and enabled
    for node in enabled:
        got = _settings(eval_rendered(tmp_path / "out" / f"{node}.nix"))
        got["knownHosts"] = _without_reach_address(got["knownHosts"], hosts)
        assert got == expected[node], node


def _commands(script: str) -> list[list[str]]:
    """A script's commands, each as its words (a line ending in a backslash goes on)."""
    return [line.split() for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def _vpn_details(interfaces: dict, sysctl: dict) -> dict:
    return {"sysctl": sysctl, "interfaces": {
        name: {"privateKeyFile": i["privateKeyFile"], "postUp": _commands(i["postUp"]),
               "postDown": _commands(i["postDown"]), "keepalives": i["keepalives"]}
        for name, i in interfaces.items()}}


@pytest.mark.parametrize("fleet", sorted(p.name for p in FLEETS.glob("vpn-*.nix")))
def test_a_nixus_vpn_gives_every_node_the_key_files_scripts_and_sysctls_nixus_gives_it(
        fleet: str, tmp_path: Path, nixus_oracle: Callable[..., dict]) -> None:
    """What crosshost.nix does not print, read by a script of the test's own from Nixus's
    evaluation: the private key files, the gateway's masquerading commands, the keepalives and
    the forwarding sysctls."""
    nodes = _render(fleet, tmp_path)
    expected = nixus_oracle(tmp_path / "fleet.nix", ROOT / "tests" / "nixus_vpn_details.nix")
    for node in (n["name"] for n in nodes if n["enable"]):
        config = eval_rendered(tmp_path / "out" / f"{node}.nix")
        interfaces = {name: {**i, "keepalives": [p["persistentKeepalive"] for p in i["peers"]]}
                      for name, i in config["networking"]["wg-quick"]["interfaces"].items()}
        assert _vpn_details(interfaces, config["boot"]["kernel"]["sysctl"]) == \
            _vpn_details(expected[node]["interfaces"], expected[node]["sysctl"]), node


Record = tuple[str, str, int, str]  # name, type, ttl, data: what crosshost.nix prints of a record


def _zone_file_records(data: str) -> set[Record]:
    """The records of a zone file as nixus writes it (`$ORIGIN`, `$TTL`, then one record a line,
    `<owner> [<ttl>] IN <type> <data>`), with absolute owners and the TTL that applies."""
    records, origin, default = set(), "", 0
    for line in data.splitlines():
        directive, _, value = line.partition(" ")
        if directive in ("$ORIGIN", "$TTL"):
            origin, default = (value, default) if directive == "$ORIGIN" else (origin, int(value))
            continue
        head, rest = line.split(" IN ", 1)  # the first ` IN ` ends owner and TTL: no TXT is before it
        owner, *ttl = head.split(" ")
        kind, rdata = rest.split(" ", 1)
        name = origin if owner == "@" else f"{owner}.{origin}"
        records.add((name, kind, int(ttl[0]) if ttl else default, rdata))
    return records


def _listed(records: list[dict]) -> set[Record]:
    return {(r["name"], r["type"], r["ttl"], r["data"]) for r in records}


def _without_serial(records: set[Record]) -> set[Record]:
    """The records with the SOA's serial left out, and its fields as one line.
    Nixus's SOA has the placeholder `@NIXUS_ZONE_SERIAL@`, which its zone-file build replaces by
    the time of the build; nixus's has the serial pinned in fleet.lock.json. nixus writes the
    serial and the timers in parentheses (zone-file syntax for one record over a group), which
    crosshost.nix's single line does not have."""
    def soa(data: str) -> str:
        fields = data.replace("(", "").replace(")", "").split()
        return " ".join(fields[:2] + ["SERIAL"] + fields[3:])
    return {(n, t, ttl, soa(d) if t == "SOA" else d) for n, t, ttl, d in records}


@pytest.mark.parametrize("fleet", sorted(p.name for p in FLEETS.glob("dns-*.nix")))
def test_a_nixus_fleet_gives_every_zone_the_records_nixus_gives_it(
        fleet: str, tmp_path: Path, nixus_oracle: Callable[..., dict]) -> None:
    nodes = _render(fleet, tmp_path)
    expected = nixus_oracle(tmp_path / "fleet.nix")["zones"]
    assert expected
    # Each zone as its primary's rendered module gives it to NixOS's nsd, checked by nsd itself.
    served = {}
    for node in nodes:
        for name, zone in eval_rendered(tmp_path / "out" / f"{node['name']}.nix", "services.nsd.zones").items():
            if "data" in zone:
                nsd_checkzone(tmp_path, name, zone["data"])
                served[name] = _zone_file_records(zone["data"])
    assert sorted(served) == sorted(f"{z}." for z in expected)
    for zone, records in expected.items():
        got = served[f"{zone}."]
        assert _without_serial(got) == _without_serial(_listed(records)), zone
        # What a fleet reads back from `dns.zones.<zone>.records` is the zone that nsd serves.
        listed = json.loads(run_nixus("eval", "--json", f'dns.zones."{zone}".records', cwd=tmp_path).out)
        assert _without_serial(_listed(listed)) == _without_serial(got), zone
