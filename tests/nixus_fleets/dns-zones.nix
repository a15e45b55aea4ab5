# Nixus's dns.zones: several zones on two primaries, nested zones (a record goes into the zone
# whose name is the longest suffix of its own), every zone and SOA option, and the TTL defaults
# (a record's TTL is its zone's; the SOA's TTL is the zone's unless `soa.ttl` says otherwise).
let
  soa = { master = "ns1.example.org."; email = "hostmaster.example.org."; refresh = 3600; retry = 600;
          expire = 604800; negativeTtl = 300; };
in {
  nodes.ns1.host = "192.0.2.1";
  nodes.ns2 = { host = "root@192.0.2.2"; };
  nodes.web.host = "192.0.2.10";

  dns.zones."example.org" = { primaryNode = "ns1"; ttl = 3600; inherit soa; };
  dns.zones."sub.example.org" = {
    name = "sub.example.org";
    primaryNode = "ns1";
    ttl = 300;
    soa = soa // { ttl = 86400; serial = 2024010101; email = "dns-admin"; };
  };
  dns.zones."deep.sub.example.org" = {
    primaryNode = "ns2";
    ttl = 60;
    soa = { master = "ns2.example.org."; email = "hostmaster.example.org."; refresh = 1800; retry = 300;
            expire = 1209600; negativeTtl = 60; ttl = 120; };
  };
  dns.zones."example.net" = { primaryNode = "ns2"; ttl = 7200; soa = soa // { master = "ns2.example.org."; }; };

  dns.records = {
    "example.org.".NS = [ "ns1.example.org." "ns2.example.org." ];
    "ns1.example.org.".A = "192.0.2.1";
    "ns2.example.org.".A = "192.0.2.2";
    "web.example.org.".A = { address = "192.0.2.10"; ttl = 30; };
    "a.b.example.org.".A = "192.0.2.11";  # no zone b.example.org: into example.org

    "sub.example.org.".NS = [ "ns1.example.org." ];
    "www.sub.example.org.".A = "192.0.2.12";
    "x.y.sub.example.org.".AAAA = "2001:db8::12";

    "deep.sub.example.org.".NS = "ns2.example.org.";
    "deep.sub.example.org.".A = { address = "192.0.2.13"; ttl = 5; };
    "www.deep.sub.example.org.".CNAME = "deep.sub.example.org.";

    "example.net.".NS = [ "ns1.example.org." "ns2.example.org." ];
    "example.net.".MX = "mail.example.org.";
    "www.example.net.".CNAME = "web.example.org.";
  };
}
