# Several VPN networks: a node that serves one and is a client of another, a client that makes
# a server that is no gateway its own internet gateway, a network switched off, and networks
# written over several modules (as Nixus fleets split them).
{ lib, ... }: {
  imports = [
    { vpn.networks.backbone.clients.db = { subnetIp = "10.10.0.3"; wireguard.publicKey = "GMdXRr04Jq7jWnF7UOxZDX5tLjoOWC8kEY0qUPvtSys="; wireguard.privateKeyFile = "/run/keys/backbone"; }; }
    { vpn.networks.backbone.server.port = 51900; }
  ];
  nodes.hub = { host = "192.0.2.20"; configuration.networking.public.ipv4 = "203.0.113.20"; };
  nodes.web = { host = "192.0.2.21"; configuration.networking.public = { ipv4 = "203.0.113.21"; ipv6 = "2001:db8::21"; }; };
  nodes.db.host = "192.0.2.22";
  nodes.dev.host = "192.0.2.23";

  vpn.networks.backbone = {
    backend = "wireguard";
    subnet = "10.10.0.0/16";
    server = {
      node = "hub";
      subnetIp = "10.10.0.1";
      wireguard.publicKey = "IvRtkFKkGmsavAmW0xmlHD7WBMqQUoDdp/rQWwWLZ0M=";
      wireguard.privateKeyFile = "/run/keys/backbone";
    };
    clients.web = {
      subnetIp = "10.10.0.2";
      internetGateway = true;
      wireguard.publicKey = "wpzXksb6hiXQusVb4t1pIDcYBLo/sc9Zs5L0DiwhAlM=";
      wireguard.privateKeyFile = "/run/keys/backbone";
    };
  };

  # web serves the developers' network; hub is one of its clients.
  vpn.networks.devs = {
    backend = "wireguard";
    subnet = "192.168.77.0/24";
    server = {
      node = "web";
      subnetIp = "192.168.77.1";
      wireguard = { publicKey = "kNmMZZ7F0WocdqzcYcus/kRxjp2nf7pl2ENoM4BFFGo="; privateKeyFile = "/run/keys/devs"; };
    };
    clients = lib.genAttrs [ "hub" "dev" ] (n: {
      subnetIp = if n == "hub" then "192.168.77.2" else "192.168.77.3";
      wireguard = {
        publicKey = if n == "hub" then "vVPdqcbujlv5ORrcKvlO50PAjr0Rl2ZX7xy3uiBJ0UY=" else "A/YFdtyID9tNiyVtiZtSog/7InIj+cCW839BW/+uATw=";
        privateKeyFile = "/run/keys/devs";
      };
    });
  };

  vpn.networks.old = {
    enable = false;
    backend = "wireguard";
    subnet = "10.99.0.0/24";
    server = { node = "hub"; subnetIp = "10.99.0.1"; wireguard = { publicKey = "x"; privateKeyFile = "/x"; }; };
  };
}
