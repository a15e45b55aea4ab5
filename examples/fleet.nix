# The example fleet of fleet.py, written as a Nixus user writes it: the same facts, the same
# rendered per-host modules.
{ config, lib, ... }:
let
  admin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw admin@laptop";
in
{
  # `nixus testbed up` writes where the local test hosts are; use them when they exist.
  imports = lib.optional (builtins.pathExists ./testbed-hosts.py) ./testbed-hosts.py;

  defaults = { name, ... }: {
    configuration.networking.hostName = name;
  };

  nodes = {
    gw = { host = "10.0.0.1"; tags = [ "edge" ]; };
    web1 = { host = "10.0.0.11"; tags = [ "web" ]; };
    web2 = { host = "10.0.0.12"; tags = [ "web" ]; };
    ns1 = { host = "10.0.0.21"; tags = [ "dns" ]; };
    ns2 = { host = "10.0.0.22"; tags = [ "dns" ]; deployAfter = [ "ns1" ]; };
  };

  ssh.access.gw.keys.admin = {
    publicKey = admin;
    hasAccessTo = lib.genAttrs [ "web1" "web2" "ns1" "ns2" ] (_: { root = true; });
  };

  vpn.networks.backbone = {
    subnet = "10.100.0.0/24";
    topology = "star";
    server = "gw";
    members = { gw = { }; web1 = { }; web2 = { }; };
  };

  dns.zones."example.org" = {
    primary = "ns1";
    secondaries = [ "ns2" ];
    nodeRecords = [ "gw" "web1" "web2" ];
  };
  dns.records = {
    "www.example.org." = [ { type = "CNAME"; data = "web1.example.org."; } ];
    "example.org." = [ { type = "MX"; data = "10 gw.example.org."; } ];
  };

  # web2 forwards to web1 at its VPN address (a read of another node's computed value).
  nodes.web2.configuration.environment.etc.upstream.text = config.vpn.addresses.backbone.web1 + ":80\n";
}
