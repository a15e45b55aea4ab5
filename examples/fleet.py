"""An example fleet: a gateway, two web servers and two name servers."""

from nixus_py.evaluate import lazy, mkDefault
from nixus_py import nix

modules = [
    {
        "defaults": lambda name, **_: {
            "tags": mkDefault(["example"]),
            "configuration": {"networking": {"hostName": name}},
        },
        "nodes": {
            "gw": {"host": "10.0.0.1", "tags": ["edge"]},
            "web1": {"host": "10.0.0.11", "tags": ["web"]},
            "web2": {"host": "10.0.0.12", "tags": ["web"]},
            "ns1": {"host": "10.0.0.21", "tags": ["dns"]},
            "ns2": {"host": "10.0.0.22", "tags": ["dns"]},
        },
    },
    lambda nodes, **_: {
        "nodes": {
            "web2": {"configuration": {
                "environment": {"etc": {"upstream": {"text": lazy(lambda: nodes.web1.host + ":80\n")}}},
                "services": {"nginx": {"package": nix.expr("pkgs.nginxMainline")}},
            }},
        },
    },
]
