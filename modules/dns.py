"""Authoritative DNS across the fleet: `dns.zones.<zone>` served by nsd on a primary and its
secondaries, with records from `dns.records."<fqdn>."` and automatic `<node>.<zone>` records.

The primary gets the zone data with `notify` and `provideXFR` for the secondaries; secondaries
get `requestXFR` and `allowNotify` for the primary; all open TCP and UDP port 53. The zone's
serial changes only when its content does: the content's hash and serial are kept in
fleet.lock.json.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from nixus_py.evaluate import NixusError, lazy, mkOption, types
from nixus_py.fleet.lock import lock_entry
from nixus_py.fleet.provenance import Fact, per_evaluation
from nixus_py.nixlang import Annotated

RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "CAA"]
# Every name and every piece of record data goes into the zone file (one record per line) and
# nsd.conf: each is checked to be what it claims, so that no value can add a line, a record or a
# comment (`;`) that nobody declared.
_LABEL = r"(\*|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
_FQDN = re.compile(rf"({_LABEL}\.)+")
_NAME = re.compile(rf"({_LABEL}\.)*{_LABEL}\.?|\.")  # absolute or relative to the zone; `.` is the root
_PRINTABLE = frozenset(range(0x21, 0x7f)) | {0x20}


def _fqdn(name: str) -> str:
    """`example.org` and `example.org.` both mean the absolute name `example.org.`."""
    return name if name.endswith(".") else name + "."


def _is_fqdn(name: str) -> bool:
    return len(name) <= 254 and _FQDN.fullmatch(_fqdn(name)) is not None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` is, without a scope id (`fe80::1%eth0` names no address in a zone)."""
    try:
        return ipaddress.ip_address(text) if "%" not in text else None
    except ValueError:
        return None


_NOT_A_NAME = "is not a domain name: labels of letters, digits, `_' and `-', separated by dots"
dns_name = types.addCheck(types.str, _is_fqdn, "dnsName", "domain name (labels of letters, digits, `_' and `-')")


def _record_options(**_: Any) -> dict:
    return {"options": {
        "type": mkOption(type=types.enum(RECORD_TYPES), description="The record type."),
        "data": mkOption(type=types.str,
                         description="The record data as in a zone file: an address for A/AAAA, a name for "
                                     "CNAME/NS, `10 mail.example.org.` for MX, `prio weight port target` for "
                                     "SRV, `0 issue \"ca.example\"` for CAA, any text for TXT (split into "
                                     "255-byte strings as needed)."),
        "ttl": mkOption(type=types.nullOr(types.ints.unsigned), default=None,
                        description="TTL of this record; the zone's `ttl` when null."),
    }}


def _zone_options(name: str, **_: Any) -> dict:
    zone = _fqdn(name)
    return {"options": {
        "primary": mkOption(type=types.str, description="The node that serves the zone's master copy."),
        "secondaries": mkOption(type=types.listOf(types.str), default=[],
                                description="Nodes that serve copies transferred from the primary."),
        "ttl": mkOption(type=types.ints.unsigned, default=3600, description="Default TTL of the records."),
        "soa": {
            "rname": mkOption(type=dns_name, default=f"hostmaster.{zone}",
                              description="Mailbox of the zone's administrator, as a name."),
            "refresh": mkOption(type=types.ints.unsigned, default=3600, description="SOA refresh."),
            "retry": mkOption(type=types.ints.unsigned, default=600, description="SOA retry."),
            "expire": mkOption(type=types.ints.unsigned, default=604800, description="SOA expire."),
            "minimum": mkOption(type=types.ints.unsigned, default=300, description="SOA negative TTL."),
        },
        "nodeRecords": mkOption(type=types.listOf(types.str), default=[],
                                description="Nodes that get `<node>.<zone>` records pointing at their address."),
        "nodeAddress": mkOption(type=types.str, default="host",
                                description="Where the automatic records point: `host` (the node's host, which "
                                            "must be an address) or `vpn:<net>` (its address in that network)."),
    }}


class _Zone:
    """One zone: its records checked, its data and serial, and what each server needs."""

    def __init__(self, name: str, zone: Any, records: dict[str, list], fleet: Any, options: Any):
        self.name, self.fqdn, self.fleet = name, _fqdn(name), fleet
        self.zones = Fact(options["dns"]["zones"], ("dns", "zones"))
        self.records_fact = Fact(options["dns"]["records"], ("dns", "records"))
        nodes = fleet["nodes"]
        self.primary, self.secondaries = zone["primary"], list(zone["secondaries"])
        self.ttl = zone["ttl"]
        for path, node in [(("primary",), self.primary)] + [(("secondaries",), s) for s in self.secondaries]:
            if node not in nodes:
                self.fail(path, f"names the node `{node}', but there is no such node")
        if self.primary in self.secondaries:
            self.fail(("secondaries",), f"contains `{self.primary}', the zone's primary")
        self.records = records
        self._add_node_records(zone, nodes)
        self._check_cnames()
        self.servers = [self.primary] + self.secondaries
        self.ns_names = [f"{n}.{self.fqdn}" for n in self.servers]
        soa = zone["soa"]
        self.soa = (f"{self.ns_names[0]} {_fqdn(soa['rname'])} ({{serial}} {soa['refresh']} {soa['retry']} "
                    f"{soa['expire']} {soa['minimum']})")
        body = self._body()
        self.hash = hashlib.sha256((self.soa + "\n" + body).encode()).hexdigest()[:16]
        pinned = lock_entry(fleet["lock"], "dns", self.fqdn)
        old = pinned.get("serial", 0)
        if type(old) is not int or not 0 <= old < 2**32:
            raise NixusError(f"fleet.lock.json: dns.\"{self.fqdn}\".serial is {old!r}, not a zone serial "
                             "(0 to 4294967295): correct it, or remove the zone's entry to start again at 1")
        # Past 2^32 - 1 the serial wraps to 1, which secondaries still read as newer (RFC 1982).
        self.serial = old if pinned.get("hash") == self.hash and old > 0 else old % (2**32 - 1) + 1
        self.data = (f"$ORIGIN {self.fqdn}\n$TTL {self.ttl}\n@ IN SOA {self.soa.format(serial=self.serial)}\n"
                     + body)

    def fail(self, path: tuple, message: str) -> None:
        raise self.zones.error((self.name,) + path, message)

    def _address_of(self, node: str, source: str) -> str:
        if source == "host":
            return self.fleet["nodes"][node]["address"]
        if source.startswith("vpn:"):
            net = source[4:]
            addresses = self.fleet["vpn"]["addresses"].get(net)
            if addresses is None:
                self.fail(("nodeAddress",), f"is `{source}', but there is no VPN network `{net}'")
            if node not in addresses:
                self.fail(("nodeRecords",), f"contains `{node}', which is not a member of VPN network `{net}'")
            return addresses[node]
        self.fail(("nodeAddress",), f"is `{source}'; expected `host' or `vpn:<net>'")
        raise AssertionError

    def _add_node_records(self, zone: Any, nodes: Any) -> None:
        auto = list(zone["nodeRecords"]) + [n for n in [self.primary] + self.secondaries
                                            if n not in zone["nodeRecords"]]
        for node in auto:
            if node not in nodes:
                self.fail(("nodeRecords",), f"contains `{node}', but there is no such node")
            source = zone["nodeAddress"] if node in zone["nodeRecords"] else "host"
            address = self._address_of(node, source)
            ip = _ip(address)
            if not _is_fqdn(f"{node}.{self.fqdn}"):
                self.fail(("nodeRecords",) if node in zone["nodeRecords"] else (),
                          f"gives the node `{node}' a record, but `{node}.{self.fqdn}' is no domain name")
            if ip is None:
                if node in zone["nodeRecords"]:
                    self.fail(("nodeRecords",), f"contains `{node}', whose address `{address}' is not an IP "
                                                f"address (set `nodeAddress' or the node's host)")
                continue  # a server without an address gets no glue record
            kind = "A" if ip.version == 4 else "AAAA"
            why = f"dns.zones.{self.name}.nodeRecords" if node in zone["nodeRecords"] else f"dns.zones.{self.name}"
            self.records.setdefault(f"{node}.{self.fqdn}", []).append(
                {"type": kind, "data": str(ip), "ttl": None, "why": why})

    def _check_cnames(self) -> None:
        for name, recs in self.records.items():
            kinds = {r["type"] for r in recs}
            if "CNAME" in kinds and len(recs) > 1:
                raise self.records_fact.error((name,), "has a CNAME record beside other records "
                                                       "(a CNAME must stand alone)")

    def _body(self) -> str:
        lines = [f"@ IN NS {ns}" for ns in self.ns_names]
        for name in sorted(self.records, key=lambda n: (n.count("."), n)):
            owner = "@" if name == self.fqdn else name[: -len(self.fqdn) - 1]
            for r in self.records[name]:
                ttl = f" {r['ttl']}" if r["ttl"] is not None else ""
                lines.append(f"{owner}{ttl} IN {r['type']} {_rdata(r['type'], r['data'])}")
        return "\n".join(lines) + "\n"

    def server_address(self, node: str, role: str) -> str:
        host = self.fleet["nodes"][node]["address"]
        ip = _ip(host)
        if ip is None:
            self.fail((role,), f"contains `{node}', whose host `{host}' is not an IP address; nsd's "
                               f"transfer and notify lists need addresses")
        return str(ip)

    def node_config(self, node: str) -> dict:
        why = f"dns.zones.{self.name}"
        if node == self.primary:
            peers = [f"{self.server_address(s, 'secondaries')} NOKEY" for s in self.secondaries]
            zone = {"data": self.data, "notify": peers, "provideXFR": peers}
        else:
            primary = f"{self.server_address(self.primary, 'primary')} NOKEY"
            zone = {"requestXFR": [primary], "allowNotify": [primary]}
        return {
            "services": {"nsd": {"enable": True, "interfaces": ["0.0.0.0", "::"],
                                 "zones": {self.fqdn: Annotated(zone, why)}}},
            "networking": {"firewall": {"allowedTCPPorts": [53], "allowedUDPPorts": [53]}},
        }


def _rdata(kind: str, data: str) -> str:
    """Record data as the zone file writes it: TXT as quoted strings of at most 255 bytes."""
    if kind != "TXT":
        return data
    raw = data.encode()
    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join(map(_character_string, chunks))


def _character_string(chunk: bytes) -> str:
    """One <character-string> as RFC 1035 writes it: quoted, with `"` and `\\` escaped and every
    byte outside printable ASCII as `\\DDD` (a byte split off a UTF-8 character, say)."""
    return '"' + "".join("\\" + chr(b) if b in (0x22, 0x5C) else chr(b) if b in _PRINTABLE else f"\\{b:03d}"
                         for b in chunk) + '"'


def _target_ok(target: str) -> bool:
    return _NAME.fullmatch(target) is not None


def _check_record(name: str, r: Any, fail: Any) -> dict:
    kind, data = r["type"], r["data"]
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in data):
        fail(f"has a {kind} record with a control character (a newline, say) in its data: {data!r}")
    if kind in ("A", "AAAA"):
        ip = _ip(data)
        ok = ip is not None and ip.version == (4 if kind == "A" else 6)
    elif kind in ("CNAME", "NS"):
        ok = _is_fqdn(data)
    elif kind == "MX":
        m = re.fullmatch(r"(\d{1,5}) (\S+)", data)
        ok = m is not None and int(m.group(1)) < 2**16 and _target_ok(m.group(2))
    elif kind == "SRV":
        m = re.fullmatch(r"(\d{1,5}) (\d{1,5}) (\d{1,5}) (\S+)", data)
        ok = m is not None and all(int(x) < 2**16 for x in m.groups()[:3]) and _target_ok(m.group(4))
    elif kind == "CAA":  # RFC 8659: flags, a tag, and a value of printable characters
        ok = re.fullmatch(r"\d{1,3} [A-Za-z0-9]+ \"[\x20\x21\x23-\x5b\x5d-\x7e]*\"", data) is not None
    else:  # TXT: any text, written escaped
        ok = True
    if not ok:
        fail(f"has an invalid {kind} record: `{data}'")
    return {"type": kind, "data": data, "ttl": r["ttl"], "why": f"dns.records.\"{name}\""}


class _Dns:
    def __init__(self, fleet: Any, options: Any):
        zones, records = fleet["dns"]["zones"], fleet["dns"]["records"]
        for z in zones:
            if not _is_fqdn(z):
                raise Fact(options["dns"]["zones"], ("dns", "zones")).error((z,), _NOT_A_NAME)
        by_zone: dict[str, dict[str, list]] = {_fqdn(z): {} for z in zones}
        fact = Fact(options["dns"]["records"], ("dns", "records"))
        for name in sorted(records):
            fqdn = _fqdn(name)
            zone = max((z for z in by_zone if fqdn == z or fqdn.endswith("." + z)), key=len, default=None)

            def fail(message: str, name: str = name) -> None:
                raise fact.error((name,), message)

            if not _is_fqdn(name):
                fail(_NOT_A_NAME)
            if zone is None:
                fail(f"is in no declared zone (zones: {', '.join(sorted(by_zone)) or 'none'})")
            by_zone[zone][fqdn] = [_check_record(name, r, fail) for r in records[name]]  # type: ignore[index]
        self.zones = {z: _Zone(z, zones[z], by_zone[_fqdn(z)], fleet, options) for z in sorted(zones)}


dns = per_evaluation(_Dns)


def module(config: Any, options: Any, **_: Any) -> dict:
    def per_node(name: str, **_: Any) -> dict:
        def configuration() -> dict:
            served = [z for z in dns(config, options).zones.values() if name in z.servers]
            if not served:
                return {}
            out = served[0].node_config(name)
            for z in served[1:]:
                out["services"]["nsd"]["zones"].update(z.node_config(name)["services"]["nsd"]["zones"])
            return out

        return {"configuration": lazy(configuration)}

    def relations() -> list:
        return [{"from": z.primary, "to": s, "kind": "dns", "orders": True, "why": f"dns.zones.{z.name}.secondaries"}
                for z in dns(config, options).zones.values() for s in z.secondaries]

    return {
        "options": {"dns": {
            "zones": mkOption(type=types.attrsOf(types.submodule(_zone_options)), default={},
                              description="Authoritative zones: `dns.zones.<zone>.{primary, secondaries, ...}`."),
            "records": mkOption(type=types.attrsOf(types.listOf(types.submodule(_record_options))), default={},
                                description="Records by absolute name: `dns.records.\"www.example.org.\"`."),
        }},
        "config": {
            "defaults": per_node,
            "lockFile": {"dns": lazy(lambda: {z.fqdn: {"hash": z.hash, "serial": z.serial}
                                              for z in dns(config, options).zones.values()})},
            "relations": lazy(relations),
        },
    }
