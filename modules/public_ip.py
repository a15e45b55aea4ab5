"""Nixus's `networking.public.{ipv4, ipv6, hasIpv4, hasIpv6}`: every node's public addresses, as
NixOS options of its configuration, where other nodes' settings read them (the endpoint of a VPN
server in Nixus's form). As in Nixus, every node's NixOS modules declare them, so that NixOS
reads the rendered module of a node that sets them.
"""

from __future__ import annotations

from typing import Any

from nixus_py import nix

# The declarations, as NixOS evaluates them (indented for their place in a rendered module): the
# addresses are strings, `has*` say whether one is set.
DECLARATIONS = nix.expr("""{ lib, options, ... }: let
      address = v: lib.mkOption { type = lib.types.str; description = "The node's public IPv${v} address."; };
      has = v: lib.mkOption {
        type = lib.types.bool;
        readOnly = true;
        default = options.networking.public."ipv${v}".isDefined;
        description = "Whether the node has a public IPv${v} address.";
      };
    in { options.networking.public = { ipv4 = address "4"; hasIpv4 = has "4"; ipv6 = address "6"; hasIpv6 = has "6"; }; }""")


def module(**_: Any) -> dict:
    return {"config": {"defaults": {"configuration": DECLARATIONS}}}
