# Nixus's README says of its DNS module only that it assigns DNS entries "without having to know
# which server controls the corresponding DNS zone" (it has no DNS snippet): here each service's
# module sets its own records, and each record lands in the zone that holds its name.
{ lib, ... }: {
  imports = [
    { dns.records."www.example.org.".A = "192.0.2.20"; }
    { dns.records."_minecraft._tcp.games.example.org.".SRV = { port = 25565; target = "mc.games.example.org."; }; }
    { dns.records."mc.games.example.org.".A = "192.0.2.21"; }
    { dns.records."example.org.".MX = [ { domain = "mail.example.org."; preference = 10; } ]; }
    { dns.records."example.org.".MX = [ { domain = "backup-mail.example.org."; preference = 20; } ]; }
  ];
  nodes.dns.host = "192.0.2.53";
  nodes.game = { host = "192.0.2.21"; };
  dns.zones = lib.genAttrs [ "example.org" "games.example.org" ] (zone: {
    primaryNode = "dns";
    ttl = 3600;
    soa = { master = "dns.example.org."; email = "admin.example.org."; refresh = 3600; retry = 600;
            expire = 86400; negativeTtl = 600; };
  });
  dns.records."example.org.".NS = "dns.example.org.";
  dns.records."games.example.org.".NS = "dns.example.org.";
  dns.records."dns.example.org.".A = "192.0.2.53";
}
