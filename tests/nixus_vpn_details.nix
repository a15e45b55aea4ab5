# What real Nixus gives each enabled node of a fleet's VPN beyond what crosshost.nix prints: the
# interfaces' private key files, up and down scripts and peers' keepalives, and the sysctls.
#   nix-instantiate --eval --strict --json nixus_vpn_details.nix --arg oracle DIR --arg fleet FILE
{ oracle, fleet }:
let
  standIn = oracle + "/nixos-stand-in";
  lib = import (standIn + "/lib");
  nixus = import (oracle + "/nixus/build.nix") { nixpkgs = standIn; deploySystem = builtins.currentSystem; } { } {
    imports = [ fleet ];
    defaults.nixpkgs = standIn;
  };
  interface = i: {
    inherit (i) privateKeyFile postUp postDown;
    keepalives = map (p: p.persistentKeepalive) i.peers;
  };
in
lib.mapAttrs (_: node: {
  interfaces = lib.mapAttrs (_: interface) node.configuration.networking.wg-quick.interfaces;
  sysctl = node.configuration.boot.kernel.sysctl;
}) (lib.filterAttrs (_: node: node.enable) nixus.config.nodes)
