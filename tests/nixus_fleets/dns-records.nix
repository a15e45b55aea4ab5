# Nixus's dns.records: every record type in each of its shapes (a string, a list of strings, a
# submodule, a list of submodules, a list of both), per-record TTLs and zones, relative names.
{
  nodes.ns.host = "198.51.100.1";

  dns.zones."example.com" = {
    primaryNode = "ns";
    ttl = 1800;
    soa = { master = "ns"; email = "hostmaster"; refresh = 7200; retry = 900; expire = 1209600; negativeTtl = 120; };
  };
  dns.zones."lab.example.com" = {
    primaryNode = "ns";
    ttl = 600;
    soa = { master = "ns.example.com."; email = "hostmaster.example.com."; refresh = 7200; retry = 900;
            expire = 1209600; negativeTtl = 120; ttl = 60; };
  };

  dns.records."example.com." = {
    NS = [ "ns" "ns2.example.net." ];
    A = [ "198.51.100.10" { address = "198.51.100.11"; ttl = 60; } ];
    AAAA = "2001:db8:100::10";
    MX = [ { domain = "mx1"; } { domain = "mx2.example.com."; preference = 20; ttl = 300; } "mx3.example.net." ];
    TXT = [ "v=spf1 mx -all" { text = "say \"hello\" (twice); $ORIGIN @ ok"; ttl = 120; } ];
    CAA = [ "letsencrypt.org" { tag = "issuewild"; value = ";"; }
            { tag = "iodef"; value = "mailto:security@example.com"; flags.issuerCritical = true; } ];
  };
  dns.records."ns.example.com.".A = "198.51.100.1";
  dns.records."ns.example.com.".AAAA = { address = "2001:db8:100::1"; };
  dns.records."mx1.example.com.".A = { address = "198.51.100.25"; };
  dns.records."www.example.com.".CNAME = { domain = "example.com."; ttl = 3600; };
  dns.records."ftp.example.com.".CNAME = [ "www" ];
  dns.records."_xmpp-server._tcp.example.com.".SRV = [
    { port = 5269; target = "xmpp.example.com."; }
    { priority = 10; weight = 5; port = 5270; target = "xmpp2"; ttl = 90; }
  ];
  dns.records."_sip._udp.example.com.".SRV = { priority = 1; weight = 0; port = 5060; target = "."; };
  dns.records."xmpp.example.com.".A = "198.51.100.30";
  dns.records."_dmarc.example.com.".TXT = { text = "v=DMARC1; p=reject"; };
  dns.records."*.example.com.".A = "198.51.100.99";
  dns.records."lab.example.com.".NS = [ "ns.example.com." ];
  dns.records."lab.example.com.".TXT = "in the lab zone";
  dns.records."host1.lab.example.com.".AAAA = [ "2001:db8:200::1" "2001:db8:200::2" ];
  # A record may name its zone: here the parent's view of the lab's name server.
  dns.records."ns.lab.example.com.".A = { address = "198.51.100.2"; zone = "example.com"; };
}
