"""The bundled DNS module: nsd zones on primary and secondaries, real zone data (checked by
nsd-checkzone), serials that change only with content, and clear errors for bad records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import eval_rendered, nsd_checkzone, run_nixus

pytestmark = pytest.mark.nix

NODES = "{'ns1': {'host': '192.0.2.1'}, 'ns2': {'host': '192.0.2.2'}, 'web1': {'host': '192.0.2.11'}}"
ZONES = "{'example.org': {'primary': 'ns1', 'secondaries': ['ns2'], 'nodeRecords': ['web1']}}"
RECORDS = ("{'www.example.org.': [{'type': 'CNAME', 'data': 'web1.example.org.'}],\n"
           " 'example.org.': [{'type': 'MX', 'data': '10 mail.example.org.'},\n"
           "                  {'type': 'TXT', 'data': 'v=spf1 ' + 'x' * 300}],\n"
           " '_sip._tcp.example.org.': [{'type': 'SRV', 'data': '10 5 5060 web1.example.org.'}],\n"
           " 'v6.example.org.': [{'type': 'AAAA', 'data': '2001:db8::1', 'ttl': 60}],\n"
           " 'example.org': [{'type': 'CAA', 'data': '0 issue \"letsencrypt.org\"'}]}")


def _render(tmp_path: Path, zones: str = ZONES, records: str = RECORDS):
    (tmp_path / "fleet.py").write_text(
        f"modules = [{{\n  'nodes': {NODES},\n  'dns': {{\n    'zones': {zones},\n    'records': {records},\n  }},\n}}]\n")
    return run_nixus("render", "-o", "out", cwd=tmp_path)


def _zone(tmp_path: Path) -> dict:
    """The zone as the primary's rendered module gives it to NixOS, checked by nsd-checkzone."""
    zone = eval_rendered(tmp_path / "out/ns1.nix", 'services.nsd.zones."example.org."')
    nsd_checkzone(tmp_path, "example.org", zone["data"])
    return zone


def _serial(tmp_path: Path) -> int:
    """The zone's serial as fleet.lock.json pins it."""
    return json.loads((tmp_path / "fleet.lock.json").read_text())["dns"]["example.org."]["serial"]


def test_primary_serves_zone_data_that_nsd_accepts(tmp_path: Path) -> None:
    r = _render(tmp_path)
    assert r.code == 0, r.err
    zone = _zone(tmp_path)
    assert zone["notify"] == ["192.0.2.2 NOKEY"] and zone["provideXFR"] == ["192.0.2.2 NOKEY"]
    data = zone["data"]
    assert "web1 IN A 192.0.2.11" in data and "www IN CNAME web1.example.org." in data
    assert '"v=spf1 ' + "x" * 248 + '" "' + "x" * 52 + '"' in data  # TXT over 255 bytes is split


def test_secondary_transfers_from_primary_and_both_open_port_53(tmp_path: Path) -> None:
    assert _render(tmp_path).code == 0
    ns2 = eval_rendered(tmp_path / "out/ns2.nix")
    assert ns2["services"]["nsd"]["zones"]["example.org."]["requestXFR"] == ["192.0.2.1 NOKEY"]  # type: ignore[index]
    for node in ("ns1", "ns2"):
        fw = eval_rendered(tmp_path / f"out/{node}.nix", "networking.firewall")
        assert fw["allowedTCPPorts"] == [53] and fw["allowedUDPPorts"] == [53]  # type: ignore[index]


def test_serial_changes_only_when_content_changes(tmp_path: Path) -> None:
    assert _render(tmp_path).code == 0
    first = _serial(tmp_path)
    assert _render(tmp_path).code == 0
    assert _serial(tmp_path) == first
    assert _render(tmp_path, records=RECORDS.replace("2001:db8::1", "2001:db8::2")).code == 0
    assert _serial(tmp_path) == first + 1
    assert "(%d " % (first + 1) in _zone(tmp_path)["data"]


def test_records_of_one_name_written_with_and_without_the_final_dot_are_all_served(tmp_path: Path) -> None:
    """`example.org` and `example.org.` are one name: the records of the one once replaced the other's."""
    assert _render(tmp_path).code == 0
    data = _zone(tmp_path)["data"]
    assert '@ IN CAA 0 issue "letsencrypt.org"' in data and "@ IN MX 10 mail.example.org." in data


TRACE = "'${builtins.trace \"X\" \"\"}"


def test_a_txt_record_and_a_text_that_look_like_nix_code_stay_text(tmp_path: Path) -> None:
    """A quote before `${` once opened an interpolation in every multi-line string nixus wrote."""
    motd = f"welcome{TRACE}\nbye\n"
    (tmp_path / "fleet.py").write_text(
        f"modules = [{{\n  'nodes': {NODES},\n  'dns': {{'zones': {ZONES},\n"
        f"    'records': {{'example.org.': [{{'type': 'TXT', 'data': {'token=' + TRACE!r}}}]}}}},\n"
        f"}}, {{'nodes': {{'ns1': {{'configuration': {{'environment': {{'etc': {{'motd': {{'text': {motd!r}}}}}}}}}}}}}}}]\n")
    assert run_nixus("render", "-o", "out", cwd=tmp_path).code == 0
    config, stderr = eval_rendered(tmp_path / "out/ns1.nix", with_stderr=True)
    assert "trace: X" not in stderr
    assert config["environment"]["etc"]["motd"]["text"] == motd
    data = config["services"]["nsd"]["zones"]["example.org."]["data"]
    assert "IN TXT \"token=" + TRACE.replace('"', '\\"') + '"' in data
    # What nixus evaluated and what NixOS reads from the rendered module are the same zone.
    shown = json.loads(run_nixus("eval", "--json", "nodes.ns1.configuration", cwd=tmp_path).out)
    zones = [d["value"]["services"]["nsd"]["zones"] for d in shown["__deferredModule"]
             if "nsd" in d["value"].get("services", {})]
    assert [z["example.org."]["data"] for z in zones] == [data]


def _txt_bytes(presentation: str) -> bytes:
    """The bytes of a TXT record's strings in zone-file presentation (`"a\\"b" "\\195\\169"`), joined."""
    out, i, quoted = bytearray(), 0, False
    while i < len(presentation):
        c = presentation[i]
        if c == '"':
            quoted = not quoted
        elif quoted and c == "\\" and presentation[i + 1:i + 4].isdigit():
            out.append(int(presentation[i + 1:i + 4]))
            i += 3
        elif quoted and c == "\\":
            out += presentation[i + 1].encode()
            i += 1
        elif quoted:
            out += c.encode()
        i += 1
    return bytes(out)


# Text that zone files treat specially (quotes, escapes, comments, parentheses) and multi-byte
# characters where the 255-byte split falls inside one.
TXT_VALUES = ['quote " backslash \\ semicolon ; paren ( ) dollar $ at @', "é" * 200, "x" + "😀" * 80,
              "v=DKIM1; k=rsa; p=" + "A" * 400]


def test_txt_records_of_any_text_read_back_exactly_from_the_zone_nsd_accepts(tmp_path: Path) -> None:
    records = "{" + ", ".join(f"'t{i}.example.org.': [{{'type': 'TXT', 'data': {v!r}}}]"
                              for i, v in enumerate(TXT_VALUES)) + "}"
    r = _render(tmp_path, records=records)
    assert r.code == 0, r.err
    printed = nsd_checkzone(tmp_path, "example.org", _zone(tmp_path)["data"])
    for i, value in enumerate(TXT_VALUES):
        line = next(line for line in printed.splitlines() if line.startswith(f"t{i}\t"))
        assert _txt_bytes(line.split("\tTXT\t", 1)[1]) == value.encode(), line


@pytest.mark.parametrize("records,zones,expected", [
    ("{'a.example.org.\\nevil IN A 6.6.6.6\\nx.example.org.': [{'type': 'A', 'data': '192.0.2.9'}]}", None,
     "is not a domain name"),
    ("{'a.example.org.': [{'type': 'TXT', 'data': 'token\\n'}]}", None, "with a control character"),
    ("{'a.example.org.': [{'type': 'AAAA', 'data': 'fd00::1%x\\n@ IN NS evil.'}]}", None, "with a control character"),
    ("{'a.example.org.': [{'type': 'AAAA', 'data': 'fe80::1%eth0'}]}", None, "has an invalid AAAA record"),
    ("{'a.example.org.': [{'type': 'CAA', 'data': '0 issue \"ca\\\\\\\\\"'}]}", None, "has an invalid CAA record"),
    ("{'a.example.org.': [{'type': 'MX', 'data': '10 mail;x'}]}", None, "has an invalid MX record"),
    (None, "{'example.org\\n@ IN A 6.6.6.6': {'primary': 'ns1'}}", "is not a domain name"),
    (None, "{'example.org': {'primary': 'ns1', 'soa': {'rname': 'a.example.org. ; x'}}}",
     "is not of type `domain name"),
])
def test_a_name_or_record_data_that_would_add_to_the_zone_file_is_an_error(
        tmp_path: Path, records: str | None, zones: str | None, expected: str) -> None:
    err = _error(tmp_path, **({"records": records} if records else {}), **({"zones": zones} if zones else {}))
    assert expected in err and "fleet.py:" in err, err


def _error(tmp_path: Path, **kw: str) -> str:
    r = _render(tmp_path, **kw)
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err
    return r.err


def test_record_in_no_declared_zone(tmp_path: Path) -> None:
    err = _error(tmp_path, records="{'www.example.com.': [{'type': 'A', 'data': '192.0.2.9'}]}")
    assert "dns.records.\"www.example.com.\"' is in no declared zone" in err and "fleet.py:5" in err


def test_cname_beside_other_records(tmp_path: Path) -> None:
    err = _error(tmp_path, records="{'web1.example.org.': [{'type': 'CNAME', 'data': 'x.example.org.'}]}")
    assert "has a CNAME record beside other records" in err


def test_invalid_address(tmp_path: Path) -> None:
    err = _error(tmp_path, records="{'a.example.org.': [{'type': 'A', 'data': '300.1.1.1'}]}")
    assert "has an invalid A record: `300.1.1.1'" in err


def test_secondary_that_is_the_primary(tmp_path: Path) -> None:
    err = _error(tmp_path, zones=ZONES.replace("['ns2']", "['ns1']"))
    assert "dns.zones.\"example.org\".secondaries' contains `ns1', the zone's primary" in err


def test_unknown_primary(tmp_path: Path) -> None:
    err = _error(tmp_path, zones=ZONES.replace("'primary': 'ns1'", "'primary': 'ns9'"))
    assert "dns.zones.\"example.org\".primary' names the node `ns9', but there is no such node" in err


def test_a_serial_stays_a_32_bit_zone_serial(tmp_path: Path) -> None:
    assert _render(tmp_path).code == 0
    lock_file = tmp_path / "fleet.lock.json"
    lock = json.loads(lock_file.read_text())
    zone = lock["dns"]["example.org."]
    zone.update(serial=2**32 - 1, hash="changed")  # the content changed at the last serial there is
    lock_file.write_text(json.dumps(lock))
    assert _render(tmp_path).code == 0
    assert json.loads(lock_file.read_text())["dns"]["example.org."]["serial"] == 1
    assert "(1 " in _zone(tmp_path)["data"]
    for bad in (-1, 2**32, "7", True):
        zone["serial"] = bad
        lock_file.write_text(json.dumps(lock))
        err = _error(tmp_path)
        assert 'fleet.lock.json: dns."example.org.".serial is' in err and "not a zone serial" in err


# Nixus's shapes (a fleet.nix as Nixus takes it): `primaryNode`, the SOA as Nixus names it, and
# per record type a string, a submodule or a list of them.
NIXUS_FLEET = """{
  nodes.ns1.host = "192.0.2.1";
  nodes.ns2.host = "192.0.2.2";
  dns.zones."example.org" = {
    primaryNode = "ns1";
    secondaries = [ "ns2" ];
    ttl = 600;
    soa = { ttl = 60; master = "ns1.example.org."; email = "hostmaster"; refresh = 7200;
            retry = 900; expire = 1209600; negativeTtl = 120; };
  };
  dns.records."example.org." = {
    NS = [ "ns1" "ns2.example.org." ];
    MX = [ { domain = "mail"; preference = 5; } "mx2.example.org." ];
    TXT = { text = "v=spf1 mx -all"; ttl = 30; };
    CAA = [ "letsencrypt.org" { tag = "iodef"; value = "mailto:ca@example.org"; flags.issuerCritical = true; } ];
  };
  dns.records."ns1.example.org.".A = "192.0.2.1";
  dns.records."ns2.example.org.".A = "192.0.2.2";
  dns.records."www.example.org.".AAAA = { ttl = 10; address = "2001:db8::1"; };
  dns.records."_sip._tcp.example.org.".SRV = { port = 5060; target = "ns1"; };
  dns.records."ftp.example.org.".CNAME = "www";
}
"""


def _render_nix(tmp_path: Path, fleet: str = NIXUS_FLEET):
    (tmp_path / "fleet.nix").write_text(fleet)
    return run_nixus("render", "-o", "out", cwd=tmp_path)


def test_a_zone_in_nixus_shapes_is_served_as_declared_and_nsd_accepts_it(tmp_path: Path) -> None:
    r = _render_nix(tmp_path)
    assert r.code == 0, r.err
    data = _zone(tmp_path)["data"]
    assert f"@ 60 IN SOA ns1.example.org. hostmaster ({_serial(tmp_path)} 7200 900 1209600 120)" in data
    for line in ("$TTL 600", "@ IN NS ns1", "@ IN NS ns2.example.org.", "@ IN MX 5 mail", "@ IN MX 10 mx2.example.org.",
                 '@ 30 IN TXT "v=spf1 mx -all"', '@ IN CAA 0 issue "letsencrypt.org"',
                 '@ IN CAA 128 iodef "mailto:ca@example.org"', "www 10 IN AAAA 2001:db8::1",
                 "_sip._tcp IN SRV 0 100 5060 ns1", "ftp IN CNAME www"):
        assert line in data.splitlines(), (line, data)
    # The zone's own NS records replace the automatic ones: no more NS records than declared.
    assert data.count(" IN NS ") == 2
    assert eval_rendered(tmp_path / "out/ns2.nix", 'services.nsd.zones."example.org.".requestXFR') == [
        "192.0.2.1 NOKEY"]


def test_a_zone_reads_back_its_records_as_nixus_lists_them(tmp_path: Path) -> None:
    assert _render_nix(tmp_path).code == 0
    records = json.loads(run_nixus("eval", "--json", 'dns.zones."example.org".records', cwd=tmp_path).out)
    assert records[0] == {"name": "example.org.", "type": "SOA", "ttl": 60,
                          "data": f"ns1.example.org. hostmaster {_serial(tmp_path)} 7200 900 1209600 120"}
    assert {"name": "example.org.", "type": "TXT", "ttl": 30, "data": '"v=spf1 mx -all"'} in records
    assert {"name": "_sip._tcp.example.org.", "type": "SRV", "ttl": 600, "data": "0 100 5060 ns1"} in records
    assert {"name": "www.example.org.", "type": "AAAA", "ttl": 10, "data": "2001:db8::1"} in records


def test_an_explicit_soa_serial_is_the_zone_serial(tmp_path: Path) -> None:
    fleet = NIXUS_FLEET.replace("negativeTtl = 120;", "negativeTtl = 120; serial = 2024010101;")
    assert _render_nix(tmp_path, fleet).code == 0
    assert "(2024010101 7200 " in _zone(tmp_path)["data"]


def test_the_serial_changes_when_only_the_zone_ttl_does(tmp_path: Path) -> None:
    assert _render_nix(tmp_path).code == 0
    first = _serial(tmp_path)
    assert _render_nix(tmp_path, NIXUS_FLEET.replace("ttl = 600;", "ttl = 900;")).code == 0
    assert _serial(tmp_path) == first + 1


def _nixus_error(tmp_path: Path, fleet: str) -> str:
    r = _render_nix(tmp_path, fleet)
    assert r.code == 1, (r.out, r.err)
    assert "Traceback" not in r.err
    return r.err


def _line_of(fleet: str, text: str) -> int:
    return next(n for n, line in enumerate(fleet.splitlines(), 1) if text in line)


@pytest.mark.parametrize("old,new,expected", [
    ('dns.records."ftp.example.org.".CNAME = "www";', 'dns.records."ftp.example.com.".CNAME = "www";',
     "`dns.records.\"ftp.example.com.\"' is in no declared zone (zones: example.org)"),
    ('address = "2001:db8::1";', 'address = "2001:db8::zz";',
     "`dns.records.\"www.example.org.\".AAAA' has an invalid AAAA record: `2001:db8::zz'"),
    ('dns.records."ns2.example.org.".A = "192.0.2.2";', 'dns.records."ns2.example.org.".A = "192.0.2.256";',
     "`dns.records.\"ns2.example.org.\".A' has an invalid A record: `192.0.2.256'"),
    ('primaryNode = "ns1";', 'primaryNode = "ns9";',
     "`dns.zones.\"example.org\".primaryNode' names the node `ns9', but there is no such node"),
    ('dns.records."example.org." = {', 'dns.zones.other = { name = "example.org"; primaryNode = "ns1"; };\n'
                                       '  dns.records."example.org." = {',
     "`dns.zones.other.name' is the zone `example.org.', which `dns.zones.\"example.org\"' is too"),
    ('primaryNode = "ns1";', 'primaryNode = "ns1"; primary = "ns2";',
     "`dns.zones.\"example.org\".primary' is `ns2', but `dns.zones.\"example.org\".primaryNode' is `ns1'"),
    ('master = "ns1.example.org.";', 'master = "ns1.example.org. ; x";',
     "`dns.zones.\"example.org\".soa.master' is not a domain name"),
    ('target = "ns1"; };', 'target = "ns1"; zone = "example.com"; };',
     "`dns.records.\"_sip._tcp.example.org.\".SRV' names the zone `example.com', but there is no such zone"),
    ('TXT = { text = "v=spf1 mx -all"; ttl = 30; };', 'TXT = { text = "v=spf1\\n@ IN NS evil."; };',
     "`dns.records.\"example.org.\".TXT' has a TXT record with a control character"),
    ('MX = [ { domain = "mail"; preference = 5; }', 'MX = [ { domain = "mail"; preference = 65536; }',
     "`dns.records.\"example.org.\".MX.\"[definition 1-entry 1]\".preference' is not of type `16 bit unsigned"),
    ('{ tag = "iodef";', '{ tag = "issuer";', "`dns.records.\"example.org.\".CAA.\"[definition 1-entry 2]\".tag' is not"),
    ('dns.records."ftp.example.org.".CNAME = "www";', 'dns.records."ftp.example.org.".SRV = "0 100 21 www";',
     "`dns.records.\"ftp.example.org.\".SRV' is not of type"),
])
def test_a_bad_nixus_shaped_zone_or_record_names_its_option_and_line(
        tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in NIXUS_FLEET
    fleet = NIXUS_FLEET.replace(old, new)
    err = _nixus_error(tmp_path, fleet)
    assert expected in err and f"fleet.nix:{_line_of(fleet, new.splitlines()[0])}" in err, err


def test_a_nixus_zone_without_a_primary_node(tmp_path: Path) -> None:
    fleet = NIXUS_FLEET.replace('primaryNode = "ns1";', "")
    err = _nixus_error(tmp_path, fleet)
    assert "`dns.zones.\"example.org\"' has no primary: set `primaryNode'" in err
    assert f"fleet.nix:{_line_of(fleet, 'dns.zones.')}" in err, err


def test_a_record_may_name_its_zone_but_only_one_it_is_in(tmp_path: Path) -> None:
    zones = 'dns.zones."sub.example.org" = { primaryNode = "ns1"; };\n'
    fleet = NIXUS_FLEET.replace('  dns.records."ftp', f'  {zones}  dns.records."sub.example.org.".NS = "ns1.example.org.";\n'
                                                    '  dns.records."ftp')
    placed = fleet.replace('"ftp.example.org.".CNAME = "www";', '"a.sub.example.org.".A = { address = "192.0.2.9"; '
                                                               'zone = "example.org"; };')
    assert _render_nix(tmp_path, placed).code == 0
    assert "a.sub IN A 192.0.2.9" in _zone(tmp_path)["data"]
    wrong = fleet.replace('"ftp.example.org.".CNAME = "www";', '"www2.example.org.".A = { address = "192.0.2.9"; '
                                                              'zone = "sub.example.org"; };')
    err = _nixus_error(tmp_path, wrong)
    assert "names the zone `sub.example.org', but `www2.example.org.' is not in it" in err
    assert f"fleet.nix:{_line_of(wrong, 'www2')}" in err, err
