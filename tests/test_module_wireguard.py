"""The bundled WireGuard module, in nixus's form and Nixus's: interfaces and peers per member,
stable addresses, private keys kept out of the store and the rendered Nix, clear errors for bad
networks, and tunnels that carry traffic between test hosts."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import run_nixus
from testbed_fixture import TestbedFleet, testbed_fleet  # noqa: F401 - the fixture


def _fleet(tmp_path: Path, networks: str, nodes: str = "{'hub': {'host': '198.51.100.1'}, 'a': {}, 'b': {}, 'c': {}}"):
    (tmp_path / "fleet.py").write_text(f"modules = [{{\n  'nodes': {nodes},\n  'vpn': {{'networks': {networks}}},\n}}]\n")
    return run_nixus("render", "-o", "out", cwd=tmp_path)


STAR = "{'home': {'subnet': '10.100.0.0/24', 'topology': 'star', 'server': 'hub', 'members': {'hub': {}, 'a': {}, 'b': {}}}}"
MESH = "{'m': {'subnet': 'fd00:1::/64', 'members': {'a': {}, 'b': {}, 'c': {}}}}"


def _lock(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "fleet.lock.json").read_text())


def test_star_members_peer_with_the_server_only(tmp_path: Path) -> None:
    r = _fleet(tmp_path, STAR)
    assert r.code == 0, r.err
    hub, a = (tmp_path / "out/hub.nix").read_text(), (tmp_path / "out/a.nix").read_text()
    assert hub.count("publicKey =") == 2 and a.count("publicKey =") == 1
    assert '"10.100.0.0/24"' in a and 'endpoint = "198.51.100.1:51820";' in a
    assert "networking.firewall" in a or "allowedUDPPorts" in a
    assert '"wg-home"' in a  # trusted interface


def test_mesh_members_peer_with_every_other_member(tmp_path: Path) -> None:
    r = _fleet(tmp_path, MESH)
    assert r.code == 0, r.err
    for node in "abc":
        text = (tmp_path / f"out/{node}.nix").read_text()
        assert text.count("publicKey =") == 2
        assert "/128" in text


def test_addresses_stay_when_members_come_and_go(tmp_path: Path) -> None:
    assert _fleet(tmp_path, MESH).code == 0
    before = _lock(tmp_path)["vpn"]["m"]
    # A new member that sorts first, and one member removed: the others keep their addresses.
    grown = MESH.replace("'members': {'a': {}, 'b': {}, 'c': {}}", "'members': {'0new': {}, 'a': {}, 'c': {}}")
    r = _fleet(tmp_path, grown, "{'0new': {}, 'a': {}, 'b': {}, 'c': {}}")
    assert r.code == 0, r.err
    after = _lock(tmp_path)["vpn"]["m"]
    assert after["a"] == before["a"] and after["c"] == before["c"]
    assert after["0new"]["address"] not in {before["a"]["address"], before["c"]["address"]}
    assert "b" not in after


def test_private_keys_stay_in_state_and_public_keys_go_to_the_lock(tmp_path: Path) -> None:
    assert _fleet(tmp_path, STAR).code == 0
    key_file = tmp_path / ".nixus-state/keys/wireguard/home/a.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = key_file.read_text().strip()
    rendered = "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    assert private not in rendered and private not in (tmp_path / "fleet.lock.json").read_text()
    public = _lock(tmp_path)["keys"]["wireguard/home/a"]["publicKey"]
    assert public in (tmp_path / "out/hub.nix").read_text()
    # A second run keeps the same keys.
    assert _fleet(tmp_path, STAR).code == 0
    assert key_file.read_text().strip() == private
    assert _lock(tmp_path)["keys"]["wireguard/home/a"]["publicKey"] == public


def _error(tmp_path: Path, networks: str, nodes: str | None = None) -> str:
    r = _fleet(tmp_path, networks, *(nodes,) if nodes else ())
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err
    return r.err


def test_address_outside_subnet(tmp_path: Path) -> None:
    err = _error(tmp_path, STAR.replace("'a': {}", "'a': {'address': '10.9.0.5'}"))
    assert "vpn.networks.home.members.a.address' is 10.9.0.5, which is outside the subnet 10.100.0.0/24" in err
    assert "fleet.py:3" in err


def test_duplicate_address(tmp_path: Path) -> None:
    err = _error(tmp_path, STAR.replace("'a': {}, 'b': {}", "'a': {'address': '10.100.0.7'}, 'b': {'address': '10.100.0.7'}"))
    assert "the same address as member `a'" in err


def test_overlapping_subnets(tmp_path: Path) -> None:
    err = _error(tmp_path, "{'x': {'subnet': '10.0.0.0/16', 'members': {'a': {}}}, "
                           "'y': {'subnet': '10.0.5.0/24', 'members': {'b': {}}}}")
    assert "vpn.networks.y.subnet' is 10.0.5.0/24, which overlaps 10.0.0.0/16 of network `x'" in err


def test_member_that_is_not_a_node(tmp_path: Path) -> None:
    err = _error(tmp_path, MESH.replace("'c': {}", "'zed': {}"))
    assert "vpn.networks.m.members.zed' names the node `zed', but there is no such node" in err


def test_star_without_server(tmp_path: Path) -> None:
    err = _error(tmp_path, STAR.replace("'server': 'hub', ", ""))
    assert "vpn.networks.home.server' is null, but a star network needs a server that is one of its members" in err


def test_endpoint_missing_where_needed(tmp_path: Path) -> None:
    err = _error(tmp_path, STAR.replace("'hub': {}", "'hub': {'endpoint': None}"))
    assert "vpn.networks.home.members.hub.endpoint' is null" in err
    err = _error(tmp_path, MESH.replace("'a': {}, 'b': {}", "'a': {'endpoint': None}, 'b': {'endpoint': None}"))
    assert "two members without an endpoint cannot reach each other" in err


def test_invalid_subnet_is_a_type_error(tmp_path: Path) -> None:
    err = _error(tmp_path, MESH.replace("fd00:1::/64", "10.0.0.1/24"))
    assert "vpn.networks.m.subnet' is not of type `IPv4 or IPv6 subnet in CIDR notation" in err


@pytest.mark.parametrize("change,option,expected", [
    # NixOS's wireguard and firewall modules paste these into root shell scripts on every member.
    (("'a': {}", "'a': {'address': 'fd00:1::5%$(reboot)'}"), "members.a.address", "not of type `null or IPv4 or IPv6 address"),
    (("fd00:1::/64", "fd00:1::%$(reboot)/64"), "subnet", "not of type `IPv4 or IPv6 subnet"),
    (("'b': {}", "'b': {'endpoint': '1.2.3.4:51820$(reboot)'}"), "members.b.endpoint", "not of type `null or `host:port"),
    (("'b': {}", "'b': {'publicKey': 'k$(reboot)='}"), "members.b.publicKey", "not of type `null or WireGuard public key"),
    (("'b': {}", "'b': {'privateKeyFile': '/run/k$(reboot)'}"), "members.b.privateKeyFile", "not of type `null or string matching"),
    (("'subnet'", "'interface': 'w;reboot', 'subnet'"), "interface", "not of type `string matching"),
    (("{'m': ", "{'m$(reboot)': "), "", "is not a valid network name"),
])
def test_a_value_bound_for_a_members_shell_scripts_is_checked(
        tmp_path: Path, change: tuple[str, str], option: str, expected: str) -> None:
    err = _error(tmp_path, MESH.replace(*change))
    network = "m" if "m$" not in change[1] else '"m$(reboot)"'
    assert f"vpn.networks.{network}{'.' + option if option else ''}' " in err and expected in err, err
    assert "fleet.py:3" in err


def test_an_auto_endpoint_needs_a_host_a_peer_can_use(tmp_path: Path) -> None:
    err = _error(tmp_path, MESH, nodes="{'a': {'host': 'fe80::1%eth0'}, 'b': {}, 'c': {}}")
    assert "vpn.networks.m.members.a.endpoint' is `auto', but the node's host `fe80::1%eth0'" in err


def test_a_private_key_replaced_in_the_state_gives_its_public_key_to_lock_and_peers(tmp_path: Path) -> None:
    import base64
    import os
    import time

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    assert _fleet(tmp_path, STAR).code == 0
    time.sleep(1.1)  # old enough for nixus to keep the public halves it derives
    assert _fleet(tmp_path, STAR).code == 0
    old_public = _lock(tmp_path)["keys"]["wireguard/home/a"]["publicKey"]
    # Restored from elsewhere: another key, written next to it and renamed over it.
    private = X25519PrivateKey.generate()
    new_file = tmp_path / ".nixus-state/keys/wireguard/home/a.key.new"
    new_file.write_bytes(base64.b64encode(private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())) + b"\n")
    os.replace(new_file, tmp_path / ".nixus-state/keys/wireguard/home/a.key")
    public = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    assert _fleet(tmp_path, STAR).code == 0
    assert _lock(tmp_path)["keys"]["wireguard/home/a"]["publicKey"] == public != old_public
    assert public in (tmp_path / "out/hub.nix").read_text() and old_public not in (tmp_path / "out/hub.nix").read_text()


def test_a_member_with_its_own_private_key_needs_its_public_key(tmp_path: Path) -> None:
    err = _error(tmp_path, MESH.replace("'b': {}", "'b': {'privateKeyFile': '/run/keys/wg.key'}"))
    assert "vpn.networks.m.members.b.publicKey' is null, but the member has its own privateKeyFile" in err


def test_two_networks_of_one_member_on_one_interface_is_an_error(tmp_path: Path) -> None:
    """Default names are cut to 15 characters: the second network would replace the first."""
    err = _error(tmp_path, "{'datacenter-one-a': {'subnet': '10.1.0.0/24', 'members': {'a': {}, 'b': {}}}, "
                           "'datacenter-one-b': {'subnet': '10.2.0.0/24', 'members': {'a': {}, 'c': {}}}}")
    assert "vpn.networks.datacenter-one-b.interface' is `wg-datacenter-o', the interface of network " \
           "`datacenter-one-a' too, on `a'" in err


# Nixus's form of a network: a server set and its clients, in a fleet.nix as a Nixus user writes it.
NIXUS_STAR = """{
  nodes.hub = { host = "198.51.100.1"; configuration.networking.public.ipv4 = "203.0.113.1"; };
  nodes.a = { };
  nodes.b = { };
  vpn.networks.home = {
    backend = "wireguard";
    subnet = "10.100.0.0/24";
    server = {
      node = "hub";
      subnetIp = "10.100.0.1";
      wireguard = { publicKey = "IvRtkFKkGmsavAmW0xmlHD7WBMqQUoDdp/rQWwWLZ0M="; privateKeyFile = "/run/keys/wg"; };
    };
    clients.a = {
      subnetIp = "10.100.0.2";
      wireguard = { publicKey = "wpzXksb6hiXQusVb4t1pIDcYBLo/sc9Zs5L0DiwhAlM="; privateKeyFile = "/run/keys/wg"; };
    };
    clients.b = {
      subnetIp = "10.100.0.3";
      wireguard = { publicKey = "kNmMZZ7F0WocdqzcYcus/kRxjp2nf7pl2ENoM4BFFGo="; privateKeyFile = "/run/keys/wg"; };
    };
  };
}
"""


@pytest.mark.parametrize("change,expected,line", [
    pytest.param(("clients.b = {", "clients.zed = {"),
                 "`vpn.networks.home.clients.zed' names the node `zed', but there is no such node", 17,
                 id="a client that is no node"),
    pytest.param(('node = "hub";', 'node = "hbu";'),
                 "`vpn.networks.home.server.node' names the node `hbu', but there is no such node", 9,
                 id="a server that is no node"),
    pytest.param(('"10.100.0.3"', '"10.101.0.3"'),
                 "`vpn.networks.home.clients.b.subnetIp' is 10.101.0.3, which is outside the subnet 10.100.0.0/24", 18,
                 id="a subnetIp outside the subnet"),
    pytest.param(('"10.100.0.3"', '"10.100.0.1"'),
                 "`vpn.networks.home.server.subnetIp' is 10.100.0.1, the same address as member `b', "
                 "from vpn.networks.home.clients.b.subnetIp (fleet.nix:18)", 10,
                 id="two members with one subnetIp"),
    pytest.param(("wpzXksb6hiXQusVb4t1pIDcYBLo/sc9Zs5L0DiwhAlM=", "wpzXksb6hiXQ;reboot"),
                 "vpn.networks.home.clients.a.wireguard.publicKey' is not of type `null or WireGuard public key", 15,
                 id="a malformed public key"),
    pytest.param((' configuration.networking.public.ipv4 = "203.0.113.1";', ""),
                 "`vpn.networks.home.server.node' is `hub', but `nodes.hub.configuration.networking.public.ipv4' "
                 "is not set: the clients reach the server at its public IPv4 address", 9,
                 id="a server without a public IPv4 address"),
    pytest.param(('subnetIp = "10.100.0.1";', 'subnetIp = "10.100.0.1"; internetGateway = true;'),
                 "`vpn.networks.home.server.internetGateway' is true, but `server.internetGatewayInterface' is not set",
                 10, id="a gateway without its interface"),
    pytest.param(("clients.b = {", "clients.hub = {"),
                 "`vpn.networks.home.clients.hub' names `hub', the network's server: a node is the server or one of "
                 "its clients", 17, id="the server as a client"),
    pytest.param(('backend = "wireguard";', 'backend = "wireguard"; members.a = { };'),
                 "`vpn.networks.home.members' is set, but the network has Nixus's `server' set", 6,
                 id="members in Nixus's form"),
    pytest.param(('backend = "wireguard";', 'backend = "wireguard"; port = 4000; server.port = 4001;'),
                 "`vpn.networks.home.port' is 4000, but `server.port' is 4001: they are one setting", 6,
                 id="two ports"),
    pytest.param(('backend = "wireguard";', 'backend = "wireguard"; topology = "mesh";'),
                 "`vpn.networks.home.topology' is mesh, but a network with Nixus's `server' set and `clients' is a "
                 "star", 6, id="a mesh in Nixus's form"),
    pytest.param(('subnet = "10.100.0.0/24";', 'subnet = "fd00:1::/64";'),
                 "`vpn.networks.home.subnet' is fd00:1::/64, but a network in Nixus's form is IPv4", 7,
                 id="an IPv6 subnet in Nixus's form"),
])
def test_bad_input_in_nixus_form_is_an_error_naming_the_option_and_its_line(
        tmp_path: Path, change: tuple[str, str], expected: str, line: int) -> None:
    (tmp_path / "fleet.nix").write_text(NIXUS_STAR.replace(*change))
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err and len(r.err.splitlines()) < 25, r.err
    assert expected in r.err and f"fleet.nix:{line}" in r.err, r.err


def test_one_server_cannot_masquerade_two_nixus_networks_through_two_interfaces(tmp_path: Path) -> None:
    gateway = 'internetGateway = true; internetGatewayInterface = "IF"; node = "hub";'
    second = ('vpn.networks.work = { subnet = "10.200.0.0/24"; server = { ' + gateway.replace("IF", "eth1") +
              ' }; clients.b = { }; };\n}\n')
    fleet = NIXUS_STAR.replace('node = "hub";', gateway.replace("IF", "eth0"))
    (tmp_path / "fleet.nix").write_text(fleet[:fleet.rindex("}")] + second)
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1 and "`vpn.networks.work.server.internetGatewayInterface' is `eth1', but network `home' " \
        "has the same server masquerade through `eth0'" in r.err, r.err


def test_a_nixus_network_takes_nixus_generated_keys_and_addresses(tmp_path: Path) -> None:
    """nixus's extensions in Nixus's form: a client without keys or subnetIp gets generated keys
    (delivered as a secret) and an address pinned in the lock; a disabled client is left out."""
    fleet = NIXUS_STAR.replace('''      subnetIp = "10.100.0.3";
      wireguard = { publicKey = "kNmMZZ7F0WocdqzcYcus/kRxjp2nf7pl2ENoM4BFFGo="; privateKeyFile = "/run/keys/wg"; };
''', "").replace("clients.a = {", "clients.a = { enable = false;")
    (tmp_path / "fleet.nix").write_text(fleet)
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    public = _lock(tmp_path)["keys"]["wireguard/home/b"]["publicKey"]
    assert _lock(tmp_path)["vpn"]["home"] == {"hub": {"address": "10.100.0.1"}, "b": {"address": "10.100.0.2"}}
    hub = (tmp_path / "out/hub.nix").read_text()
    assert public in hub and '"10.100.0.2/32"' in hub and "wpzXksb6hiXQ" not in hub
    assert "nixus-home" not in (tmp_path / "out/a.nix").read_text()
    secrets = json.loads(run_nixus("eval", "--json", "nodes.b.secrets", cwd=tmp_path).out)
    assert secrets == {"wireguard-home": {**secrets["wireguard-home"], "generatedKey": "wireguard/home/b",
                                          "path": "/var/lib/nixus/secrets/wireguard-home.key"}}


# A Nixus star on test hosts: the server is an internet gateway, c1 has Nixus's keys (its private
# key delivered as a secret), c2 nixus's generated keys and address and its own internetGateway.
TESTBED_STAR = """{ config, lib, ... }: {
  imports = lib.optional (builtins.pathExists ./testbed-hosts.py) ./testbed-hosts.py;
  defaults = { name, ... }: { configuration.networking.hostName = name; };
  nodes.hub = {
    configuration.networking.public.ipv4 = config.nodes.hub.address;
    configuration.systemd.services.vpn-web.script = "exec python3 -m http.server --bind 10.77.0.1 8080";
    secrets.wg = { source = "KEYS/hub"; path = "/var/lib/wireguard/home.key"; };
  };
  nodes.c1 = {
    configuration.systemd.services.vpn-web.script = "exec python3 -m http.server --bind 10.77.0.2 8080";
    secrets.wg = { source = "KEYS/c1"; path = "/var/lib/wireguard/home.key"; };
  };
  nodes.c2 = { };
  vpn.networks.home = {
    backend = "wireguard";
    subnet = "10.77.0.0/24";
    server = {
      node = "hub";
      subnetIp = "10.77.0.1";
      internetGateway = true;
      internetGatewayInterface = "eth0";
      wireguard = { publicKey = "HUB"; privateKeyFile = "/var/lib/wireguard/home.key"; };
    };
    clients.c1 = {
      subnetIp = "10.77.0.2";
      wireguard = { publicKey = "C1"; privateKeyFile = "/var/lib/wireguard/home.key"; };
    };
    clients.c2.internetGateway = false;
  };
}
"""


def _wg_key_pair(tb: TestbedFleet, name: str) -> str:
    """A WireGuard key pair: the private key in a file of the fleet's keys, the public key returned."""
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    (tb.keys / name).write_text(private)
    (tb.keys / name).chmod(0o600)
    return subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True).stdout.strip()


def _fetch(tb: TestbedFleet, node: str, url: str) -> str:
    """What `node` gets from `url`, trying for up to ten seconds (a tunnel's first handshake)."""
    fetch = (f"for i in $(seq 50); do python3 -c \"import urllib.request as u; "
             f"print(u.urlopen('{url}', timeout=2).status)\" 2>/dev/null && break; sleep 0.2; done")
    r = tb.ssh("root", node, fetch)
    return r.stdout.strip() + r.stderr


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.nix
def test_a_nixus_star_carries_traffic_to_the_server_and_through_it_between_clients(
        testbed_fleet: TestbedFleet) -> None:  # noqa: F811 - the fixture
    tb = testbed_fleet
    fleet = TESTBED_STAR.replace("KEYS", str(tb.keys))
    fleet = fleet.replace("HUB", _wg_key_pair(tb, "hub")).replace("C1", _wg_key_pair(tb, "c1"))
    (tb.dir / "fleet.nix").write_text(fleet)
    up = tb.nixus("testbed", "up")
    assert up.code == 0, up.err
    r = tb.nixus("deploy", "--json")
    assert r.code == 0, r.out + r.err
    assert {h["outcome"] for h in json.loads(r.out)} == {"switched"}
    # A client reaches the server's subnet address through the tunnel ...
    assert _fetch(tb, "c1", "http://10.77.0.1:8080/").endswith("200")
    assert "dev nixus-home" in tb.ssh("root", "c1", "ip route get 10.77.0.1").stdout
    transfer = tb.ssh("root", "hub", "wg show nixus-home transfer").stdout
    assert any(int(line.split()[1]) > 0 for line in transfer.splitlines()), transfer
    # ... and another client, through the server, which forwards between them.
    assert _fetch(tb, "c2", "http://10.77.0.2:8080/").endswith("200")
    hub = tb.ssh("root", "hub", "cat /proc/sys/net/ipv4/conf/nixus-home/forwarding; nft list table ip nixos-nat")
    assert hub.stdout.startswith("1\n") and 'iifname "nixus-home" oifname "eth0" masquerade' in hub.stdout, hub
    # As in Nixus, the gateway's clients send all IPv4 traffic through it, unless they say otherwise.
    assert "0.0.0.0/0" in tb.ssh("root", "c1", "wg show nixus-home allowed-ips").stdout
    assert "10.77.0.0/24" in tb.ssh("root", "c2", "wg show nixus-home allowed-ips").stdout
