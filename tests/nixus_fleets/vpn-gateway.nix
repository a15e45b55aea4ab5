# A VPN whose server is its clients' internet gateway (NAT through its uplink), on another port:
# the clients send all their IPv4 traffic through it, except one that says otherwise.
let
  key = "/var/lib/wireguard/office.key";
in {
  nodes.gw = { host = "root@192.0.2.10"; configuration.networking.public.ipv4 = "198.51.100.7"; };
  nodes.laptop.host = "192.0.2.11";
  nodes.phone.host = "192.0.2.12";
  nodes.printer.host = "192.0.2.13";

  vpn.networks.office = {
    backend = "wireguard";
    subnet = "172.16.8.0/22";
    server = {
      node = "gw";
      port = 4500;
      subnetIp = "172.16.8.1";
      internetGateway = true;
      internetGatewayInterface = "ens3";
      wireguard = { publicKey = "vVPdqcbujlv5ORrcKvlO50PAjr0Rl2ZX7xy3uiBJ0UY="; privateKeyFile = key; };
    };
    clients = {
      laptop = { subnetIp = "172.16.9.20"; wireguard = { publicKey = "A/YFdtyID9tNiyVtiZtSog/7InIj+cCW839BW/+uATw="; privateKeyFile = key; }; };
      phone = { subnetIp = "172.16.8.2"; wireguard = { publicKey = "bbqtLYDEHPN7uDvNEn9lut78bBsFjOdNj3Z2TaosL34="; privateKeyFile = key; }; };
      # Reaches the office only; its own traffic to the internet stays local.
      printer = {
        subnetIp = "172.16.11.254";
        internetGateway = false;
        wireguard = { publicKey = "3Yoy+5Tat8cs6q/JfvKfeEgR2lqR1edtuvmIg9bgZhA="; privateKeyFile = key; };
      };
    };
  };
}
