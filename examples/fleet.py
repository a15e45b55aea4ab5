"""The example fleet: a gateway, two web servers and two name servers.

One fact written once reaches every machine it touches: the admin's key is granted on all
nodes, the web servers and the gateway share a WireGuard star with the gateway as hub, the two
name servers serve example.org (ns1 primary, ns2 secondary), and web2 proxies to web1 through
the VPN. fleet.nix says the same in Nix; both render the same per-host modules.
"""

from pathlib import Path

from nixus_py.evaluate import lazy

ADMIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw admin@laptop"


def web_upstream(config, **_):
    """web2 forwards to web1 at its VPN address (a read of another node's computed value)."""
    return {"nodes": {"web2": {"configuration": {"environment": {"etc": {"upstream": {
        "text": lazy(lambda: config.vpn.addresses.backbone.web1 + ":80\n")}}}}}}}


modules = [
    {
        "defaults": lambda name, **_: {
            "configuration": {"networking": {"hostName": name}},
        },
        "nodes": {
            "gw": {"host": "10.0.0.1", "tags": ["edge"]},
            "web1": {"host": "10.0.0.11", "tags": ["web"]},
            "web2": {"host": "10.0.0.12", "tags": ["web"]},
            "ns1": {"host": "10.0.0.21", "tags": ["dns"]},
            "ns2": {"host": "10.0.0.22", "tags": ["dns"], "deployAfter": ["ns1"]},
        },
        "ssh": {"access": {"gw": {"keys": {"admin": {
            "publicKey": ADMIN,
            "hasAccessTo": {n: {"root": True} for n in ["web1", "web2", "ns1", "ns2"]},
        }}}}},
        "vpn": {"networks": {"backbone": {
            "subnet": "10.100.0.0/24",
            "topology": "star",
            "server": "gw",
            "members": {"gw": {}, "web1": {}, "web2": {}},
        }}},
        "dns": {
            "zones": {"example.org": {"primary": "ns1", "secondaries": ["ns2"], "nodeRecords": ["gw", "web1", "web2"]}},
            "records": {
                "www.example.org.": [{"type": "CNAME", "data": "web1.example.org."}],
                "example.org.": [{"type": "MX", "data": "10 gw.example.org."}],
            },
        },
    },
    web_upstream,
]

# `nixus testbed up` writes where the local test hosts are; use them when they exist.
if Path(__file__).with_name("testbed-hosts.py").exists():
    modules.append("testbed-hosts.py")
