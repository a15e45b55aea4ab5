# Nixus's README example of a VPN network, with what it leaves to the reader: the nodes, real
# WireGuard public keys, and the server's public IPv4 address, where its clients reach it.
{
  nodes.host1 = { host = "192.0.2.1"; configuration.networking.public.ipv4 = "203.0.113.1"; };
  nodes.host2.host = "192.0.2.2";
  nodes.host3.host = "192.0.2.3";

  vpn.networks.network1 = {
    backend = "wireguard";
    subnet = "10.0.0.0/24";
    server = {
      node = "host1";
      subnetIp = "10.0.0.1";
      wireguard.publicKey = "IvRtkFKkGmsavAmW0xmlHD7WBMqQUoDdp/rQWwWLZ0M=";
      wireguard.privateKeyFile = "/run/keys/wg-network1";
    };
    clients.host2 = {
      subnetIp = "10.0.0.2";
      wireguard.publicKey = "wpzXksb6hiXQusVb4t1pIDcYBLo/sc9Zs5L0DiwhAlM=";
      wireguard.privateKeyFile = "/run/keys/wg-network1";
    };
    clients.host3 = {
      subnetIp = "10.0.0.3";
      wireguard.publicKey = "kNmMZZ7F0WocdqzcYcus/kRxjp2nf7pl2ENoM4BFFGo=";
      wireguard.privateKeyFile = "/run/keys/wg-network1";
    };
  };
}
