"""Authoritative DNS across the fleet (Nixus-compatible): `dns.zones.<zone>` served by nsd on a
primary and its secondaries, with records from `dns.records."<fqdn>."` and automatic
`<node>.<zone>` records.

A name's records come in nixus's form, a list of `{ type; data; ttl; }`, or in Nixus's, per type
a string, a submodule or a list of them (`A = "192.0.2.1"`, `MX = [ { domain; preference; } ]`).
Each record goes into the zone whose name is the longest suffix of its own, and
`dns.zones.<zone>.records` reads back the zone's records as Nixus lists them.

The primary gets the zone data with `notify` and `provideXFR` for the secondaries; secondaries
get `requestXFR` and `allowNotify` for the primary; all open TCP and UDP port 53. The zone's
serial changes only when its content does: the content's hash and serial are kept in
fleet.lock.json.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from nixus_py.evaluate import NixusError, lazy, mkOption, types
from nixus_py.evaluate.errors import show_option
from nixus_py.fleet.lock import lock_entry
from nixus_py.fleet.provenance import Fact, per_evaluation
from nixus_py.nixlang import Annotated

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


def _in_zone(fqdn: str, zone: str) -> bool:
    return fqdn == zone or fqdn.endswith("." + zone)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` is, without a scope id (`fe80::1%eth0` names no address in a zone)."""
    try:
        return ipaddress.ip_address(text) if "%" not in text else None
    except ValueError:
        return None


_NOT_A_NAME = "is not a domain name: labels of letters, digits, `_' and `-', separated by dots"
dns_name = types.addCheck(types.str, _is_fqdn, "dnsName", "domain name (labels of letters, digits, `_' and `-')")


def _ttl_option() -> Any:
    return mkOption(type=types.nullOr(types.ints.unsigned), default=None,
                    description="TTL of this record; the zone's `ttl` when null.")


def _record_options(**_: Any) -> dict:
    return {"options": {
        "type": mkOption(type=types.enum(RECORD_TYPES), description="The record type."),
        "data": mkOption(type=types.str,
                         description="The record data as in a zone file: an address for A/AAAA, a name for "
                                     "CNAME/NS, `10 mail.example.org.` for MX, `prio weight port target` for "
                                     "SRV, `0 issue \"ca.example\"` for CAA, any text for TXT (split into "
                                     "255-byte strings as needed)."),
        "ttl": _ttl_option(),
    }}


class _Shape(NamedTuple):
    """A record type in Nixus's form: its fields, what a plain string stands for (None: no string
    form), and the record data the fields make (as nixus's form has it: TXT as plain text)."""

    fields: Callable[[], dict]
    from_string: Callable[[str], dict] | None
    data: Callable[[Any], str]


def _one_field(field: str, description: str) -> _Shape:
    """A type whose data is one field, which a plain string gives."""
    return _Shape(lambda: {field: mkOption(type=types.str, description=description)},
                  lambda s: {field: s}, lambda r: r[field])


_TARGET = "(relative to the zone unless it ends in `.')"
SHAPES: dict[str, _Shape] = {
    "A": _one_field("address", "The IPv4 address."),
    "AAAA": _one_field("address", "The IPv6 address."),
    "CNAME": _one_field("domain", f"The canonical name {_TARGET}."),
    "MX": _Shape(lambda: {"preference": mkOption(type=types.ints.u16, default=10, description="The preference."),
                          "domain": mkOption(type=types.str, description=f"The mail server {_TARGET}.")},
                 lambda s: {"domain": s}, lambda r: f"{r['preference']} {r['domain']}"),
    "TXT": _one_field("text", "The text (any length: nixus splits it into 255-byte strings)."),
    "SRV": _Shape(lambda: {"priority": mkOption(type=types.ints.u16, default=0, description="The priority."),
                           "weight": mkOption(type=types.ints.u16, default=100, description="The weight."),
                           "port": mkOption(type=types.port, description="The port."),
                           "target": mkOption(type=types.str, description=f"The server {_TARGET}.")},
                  None, lambda r: f"{r['priority']} {r['weight']} {r['port']} {r['target']}"),
    "NS": _one_field("domain", f"The name server {_TARGET}."),
    "CAA": _Shape(lambda: {"flags": {"issuerCritical": mkOption(type=types.bool, default=False,
                                                                description="The issuer-critical flag (128).")},
                           "tag": mkOption(type=types.enum(["issue", "issuewild", "iodef"]), description="The tag."),
                           "value": mkOption(type=types.str, description="The value (without quotes).")},
                  lambda s: {"tag": "issue", "value": s},
                  lambda r: f"{128 if r['flags']['issuerCritical'] else 0} {r['tag']} \"{r['value']}\""),
}
RECORD_TYPES = list(SHAPES)


def _shaped_option(kind: str) -> Any:
    """`dns.records."<fqdn>".<kind>`: a record or a list of them, each a submodule (or a string)."""
    shape = SHAPES[kind]
    record = types.submodule({"options": {
        **shape.fields(), "ttl": _ttl_option(),
        "zone": mkOption(type=types.nullOr(types.str), default=None,
                         description="The zone (its name in `dns.zones`) the record goes into; when null, "
                                     "the zone whose name is the longest suffix of the record's."),
    }})
    if shape.from_string is None:
        single, one = types.attrs, record
    else:
        single, one = types.either(types.str, types.attrs), types.coercedTo(types.str, shape.from_string, record)
    return mkOption(type=types.coercedTo(single, lambda v: [v], types.listOf(one)), default=[],
                    description=f"The name's {kind} records (Nixus's form).")


_SHAPED_RECORDS = {"options": {kind: _shaped_option(kind) for kind in RECORD_TYPES}}
_RECORDS = types.either(types.listOf(types.submodule(_record_options)), types.submodule(_SHAPED_RECORDS))


def _zone_module(records: Callable[[str], list]) -> Callable[..., dict]:
    """The options of a zone, with Nixus's names beside nixus's where they differ; `records`
    gives a zone's records (by its name in `dns.zones`) for reading back."""
    def zone_options(name: str, **_: Any) -> dict:
        return {"options": {
            "name": mkOption(type=types.str, default=name,
                             description="The zone's domain name; its name in `dns.zones` by default."),
            "primary": mkOption(type=types.nullOr(types.str), default=None,
                                description="The node that serves the zone's master copy (or `primaryNode`)."),
            "primaryNode": mkOption(type=types.nullOr(types.str), default=None,
                                    description="Nixus's name for `primary`."),
            "secondaries": mkOption(type=types.listOf(types.str), default=[],
                                    description="Nodes that serve copies transferred from the primary."),
            "ttl": mkOption(type=types.ints.unsigned, default=3600, description="Default TTL of the records."),
            "soa": {
                "ttl": mkOption(type=types.nullOr(types.ints.unsigned), default=None,
                                description="TTL of the SOA record; the zone's `ttl` when null."),
                "master": mkOption(type=types.nullOr(types.str), default=None,
                                   description="The primary name server, as in a zone file; when null, the "
                                               "first NS record's (`<primary>.<zone>` unless the zone has "
                                               "NS records of its own)."),
                "rname": mkOption(type=dns_name, default=f"hostmaster.{_fqdn(name)}",
                                  description="Mailbox of the zone's administrator, as an absolute name "
                                              "(or `email`)."),
                "email": mkOption(type=types.nullOr(dns_name), default=None,
                                  description="Nixus's mailbox of the administrator, as in a zone file "
                                              "(relative to the zone unless it ends in `.`)."),
                "serial": mkOption(type=types.nullOr(types.ints.u32), default=None,
                                   description="The zone's serial; when null, one that goes up whenever "
                                               "the zone's content changes (kept in fleet.lock.json)."),
                "refresh": mkOption(type=types.ints.unsigned, default=3600, description="SOA refresh."),
                "retry": mkOption(type=types.ints.unsigned, default=600, description="SOA retry."),
                "expire": mkOption(type=types.ints.unsigned, default=604800, description="SOA expire."),
                "minimum": mkOption(type=types.ints.unsigned, default=300,
                                    description="SOA negative TTL (or `negativeTtl`)."),
                "negativeTtl": mkOption(type=types.nullOr(types.ints.unsigned), default=None,
                                        description="Nixus's name for `minimum`."),
            },
            "nodeRecords": mkOption(type=types.listOf(types.str), default=[],
                                    description="Nodes that get `<node>.<zone>` records pointing at their address."),
            "nodeAddress": mkOption(type=types.str, default="host",
                                    description="Where the automatic records point: `host` (the node's host, "
                                                "which must be an address) or `vpn:<net>` (its address in that "
                                                "network)."),
            "records": mkOption(type=types.listOf(types.attrs), readOnly=True,
                                description="The zone's records, SOA first, as Nixus lists them: `{ name, type, "
                                            "ttl, data }` with absolute names, the TTL that applies and the data "
                                            "in zone-file syntax. Read-only: records are set in `dns.records`."),
        }, "config": {"records": lazy(lambda: records(name))}}
    return zone_options


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


class _Zone:
    """One zone: its records checked, its data and serial, and what each server needs."""

    def __init__(self, key: str, zone: Any, records: dict[str, list], fleet: Any, facts: tuple[Fact, Fact]):
        self.key, self.fqdn, self.fleet = key, _fqdn(zone["name"]), fleet
        self.zones, self.records_fact = facts
        nodes = fleet["nodes"]
        primary, primary_path = self._setting(zone, ("primary",), ("primaryNode",))
        if primary is None:
            self.fail((), "has no primary: set `primaryNode' (or `primary') to the node that serves it")
        self.primary, self.secondaries = primary, list(zone["secondaries"])
        self.ttl = zone["ttl"]
        for path, node in [(primary_path, self.primary)] + [(("secondaries",), s) for s in self.secondaries]:
            if node not in nodes:
                self.fail(path, f"names the node `{node}', but there is no such node")
        if self.primary in self.secondaries:
            self.fail(("secondaries",), f"contains `{self.primary}', the zone's primary")
        self.servers = [self.primary] + self.secondaries
        self.records = records
        # A zone that declares its own NS records (as every Nixus zone does) is served as declared;
        # otherwise its servers are its name servers, by their `<node>.<zone>` names.
        apex = records.setdefault(self.fqdn, [])
        own_ns = any(r["type"] == "NS" for r in apex)
        if not own_ns:
            apex[:0] = [{"type": "NS", "data": f"{n}.{self.fqdn}", "ttl": None} for n in self.servers]
        self._add_node_records(zone, nodes, servers=not own_ns)
        self._check_cnames()
        self.soa = self._soa(zone, next(r["data"] for r in apex if r["type"] == "NS"))
        self.hash = hashlib.sha256(self._text("SERIAL").encode()).hexdigest()[:16]
        explicit = zone["soa"]["serial"]
        self.serial = explicit if explicit is not None else self._next_serial(fleet["lock"])
        self.data = self._text(str(self.serial))

    def _next_serial(self, lock: Any) -> int:
        """The serial pinned in fleet.lock.json, one up when the zone's content has changed."""
        pinned = lock_entry(lock, "dns", self.fqdn)
        old = pinned.get("serial", 0)
        if type(old) is not int or not 0 <= old < 2**32:
            raise NixusError(f"fleet.lock.json: dns.\"{self.fqdn}\".serial is {old!r}, not a zone serial "
                             "(0 to 4294967295): correct it, or remove the zone's entry to start again at 1")
        # Past 2^32 - 1 the serial wraps to 1, which secondaries still read as newer (RFC 1982).
        return old if pinned.get("hash") == self.hash and old > 0 else old % (2**32 - 1) + 1

    def fail(self, path: tuple, message: str) -> None:
        raise self.zones.error((self.key,) + path, message)

    def _setting(self, zone: Any, ours: tuple[str, ...], nixus: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
        """A setting that Nixus names differently: its value and the path that gave it, Nixus's
        name when set (nixus's may then only say the same), else nixus's."""
        theirs, mine = _at(zone, nixus), _at(zone, ours)
        if theirs is None:
            return mine, ours
        if mine != theirs and self.zones.defined_at((self.key,) + ours):
            self.fail(ours, f"is `{mine}', but `{show_option(('dns', 'zones', self.key) + nixus)}' is `{theirs}': "
                            "they are one setting (Nixus's name and nixus's), set one of them")
        return theirs, nixus

    def _soa(self, zone: Any, first_ns: str) -> dict:
        """The SOA record's parts: its TTL (None: the zone's), its names and timers."""
        soa = zone["soa"]
        master = soa["master"] if soa["master"] is not None else first_ns
        if not _target_ok(master):
            self.fail(("soa", "master"), _NOT_A_NAME)
        mailbox, path = self._setting(zone, ("soa", "rname"), ("soa", "email"))
        negative, _ = self._setting(zone, ("soa", "minimum"), ("soa", "negativeTtl"))
        timers = [soa["refresh"], soa["retry"], soa["expire"], negative]
        # Nixus's email is written as given, so that a relative name is relative to the zone.
        return {"ttl": soa["ttl"], "names": f"{master} {mailbox if path[-1] == 'email' else _fqdn(mailbox)}",
                "timers": " ".join(map(str, timers))}

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

    def _add_node_records(self, zone: Any, nodes: Any, servers: bool) -> None:
        """`<node>.<zone>` records for `nodeRecords`, and for the zone's servers when they are its
        name servers."""
        auto = list(zone["nodeRecords"]) + [n for n in self.servers if servers and n not in zone["nodeRecords"]]
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
            self.records.setdefault(f"{node}.{self.fqdn}", []).append({"type": kind, "data": str(ip), "ttl": None})

    def _check_cnames(self) -> None:
        for name, recs in self.records.items():
            kinds = {r["type"] for r in recs}
            if "CNAME" in kinds and len(recs) > 1:
                raise self.records_fact.error((name,), "has a CNAME record beside other records "
                                                       "(a CNAME must stand alone)")

    def _names(self) -> list[str]:
        return sorted(self.records, key=lambda n: (n.count("."), n))

    def _text(self, serial: str) -> str:
        """The zone file: the SOA record, then the records by name."""
        soa = self.soa
        lines = [f"$ORIGIN {self.fqdn}", f"$TTL {self.ttl}",
                 f"@{_ttl(soa['ttl'])} IN SOA {soa['names']} ({serial} {soa['timers']})"]
        for name in self._names():
            owner = "@" if name == self.fqdn else name[: -len(self.fqdn) - 1]
            lines += [f"{owner}{_ttl(r['ttl'])} IN {r['type']} {_rdata(r['type'], r['data'])}"
                      for r in self.records[name]]
        return "\n".join(lines) + "\n"

    def listing(self) -> list[dict]:
        """The zone's records as Nixus lists them (`dns.zones.<zone>.records`)."""
        def ttl(value: int | None) -> int:
            return self.ttl if value is None else value
        soa = self.soa
        return [{"name": self.fqdn, "type": "SOA", "ttl": ttl(soa["ttl"]),
                 "data": f"{soa['names']} {self.serial} {soa['timers']}"}] + [
            {"name": name, "type": r["type"], "ttl": ttl(r["ttl"]), "data": _rdata(r["type"], r["data"])}
            for name in self._names() for r in self.records[name]]

    def server_address(self, node: str, role: str) -> str:
        host = self.fleet["nodes"][node]["address"]
        ip = _ip(host)
        if ip is None:
            self.fail((role,), f"contains `{node}', whose host `{host}' is not an IP address; nsd's "
                               f"transfer and notify lists need addresses")
        return str(ip)

    def node_config(self, node: str) -> dict:
        why = f"dns.zones.{self.key}"
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


def _ttl(ttl: int | None) -> str:
    """A record's TTL field in the zone file: none when it is the zone's `$TTL`."""
    return "" if ttl is None else f" {ttl}"


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


def _check_record(kind: str, data: str, fail: Callable[[str], None]) -> None:
    """That `data` is a `kind` record's data, and no more than one line of a zone file."""
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


def _entries(value: Any) -> list[tuple[str, str, int | None, str | None, tuple[str, ...]]]:
    """A name's records in either form: (type, data, ttl, zone or None, path below the name)."""
    if isinstance(value, list):  # nixus's form
        return [(r["type"], r["data"], r["ttl"], None, ()) for r in value]
    return [(kind, SHAPES[kind].data(r), r["ttl"], r["zone"], (kind,)) for kind in RECORD_TYPES for r in value[kind]]


class _Dns:
    """Every zone of the fleet with the records that fall into it."""

    def __init__(self, fleet: Any, options: Any):
        zones, records = fleet["dns"]["zones"], fleet["dns"]["records"]
        zones_fact = Fact(options["dns"]["zones"], ("dns", "zones"))
        self.records_fact = Fact(options["dns"]["records"], ("dns", "records"))
        self.domains: dict[str, str] = {}  # a zone's domain -> its name in dns.zones
        for key in sorted(zones):
            domain = zones[key]["name"]
            path = (key, "name") if zones_fact.defined_at((key, "name")) else (key,)
            if not _is_fqdn(domain):
                raise zones_fact.error(path, _NOT_A_NAME)
            if _fqdn(domain) in self.domains:
                other = show_option(("dns", "zones", self.domains[_fqdn(domain)]))
                raise zones_fact.error(path, f"is the zone `{_fqdn(domain)}', which `{other}' is too")
            self.domains[_fqdn(domain)] = key
        by_zone: dict[str, dict[str, list]] = {z: {} for z in self.domains}
        for name in sorted(records):
            fqdn = _fqdn(name)
            for kind, data, ttl, zone, below in _entries(records[name]):
                def fail(message: str, at: tuple = below, name: str = name) -> None:
                    """The error of this record (`at` its type), or of its name (`at` is `()`)."""
                    raise self.records_fact.error((name,) + at, message)

                if not _is_fqdn(name):
                    fail(_NOT_A_NAME, ())
                domain = self._zone_of(fqdn, zone, fail)
                _check_record(kind, data, fail)
                by_zone[domain].setdefault(fqdn, []).append({"type": kind, "data": data, "ttl": ttl})
        self.zones = {key: _Zone(key, zones[key], by_zone[domain], fleet, (zones_fact, self.records_fact))
                      for domain, key in sorted(self.domains.items(), key=lambda x: x[1])}

    def _zone_of(self, fqdn: str, zone: str | None, fail: Callable[..., None]) -> str:
        """The zone a record goes into: the one it names, else the longest suffix of its name."""
        declared = ", ".join(sorted(self.domains.values())) or "none"
        if zone is None:
            found = max((z for z in self.domains if _in_zone(fqdn, z)), key=len, default=None)
            if found is None:
                fail(f"is in no declared zone (zones: {declared})", ())
        else:
            found = next((z for z, key in self.domains.items() if zone in (key, z, z[:-1])), None)
            if found is None:
                fail(f"names the zone `{zone}', but there is no such zone (zones: {declared})")
            elif not _in_zone(fqdn, found):
                fail(f"names the zone `{zone}', but `{fqdn}' is not in it")
        return found  # type: ignore[return-value]


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
        return [{"from": z.primary, "to": s, "kind": "dns", "orders": True, "why": f"dns.zones.{z.key}.secondaries"}
                for z in dns(config, options).zones.values() for s in z.secondaries]

    zone_type = types.submodule(_zone_module(lambda key: dns(config, options).zones[key].listing()))
    return {
        "options": {"dns": {
            "zones": mkOption(type=types.attrsOf(zone_type), default={},
                              description="Authoritative zones: `dns.zones.<zone>.{primaryNode, secondaries, ...}`."),
            "records": mkOption(type=types.attrsOf(_RECORDS), default={},
                                description="Records by absolute name: `dns.records.\"www.example.org.\"`, a "
                                            "list of `{ type, data, ttl }` or, as in Nixus, `{ A = ...; MX = ...; }`."),
        }},
        "config": {
            "defaults": per_node,
            "lockFile": {"dns": lazy(lambda: {z.fqdn: {"hash": z.hash, "serial": z.serial}
                                              for z in dns(config, options).zones.values()})},
            "relations": lazy(relations),
        },
    }
