"""The forms a fleet value must have where it reaches a host: a word in a shell line or a passwd
entry, a line of known_hosts or authorized_keys, a file name. Each is checked at its option, so a
bad value is an error naming the option and its file:line, never a line nobody wrote."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from ..evaluate import types
from ..evaluate.errors import NixusError

# Names and paths that reach a host's passwd, a shell line or the switcher's tab-separated secrets
# manifest hold no whitespace or control characters, which would add fields or lines there.
ACCOUNT = types.strMatching(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
ABSOLUTE_PATH = types.strMatching(r"/[^\x00-\x20\x7f]*")
# A hostname or an IP address (an IPv6 one perhaps with its zone): it becomes ssh's host argument,
# a known_hosts name (where `,` and `*` would name other hosts) and a WireGuard endpoint.
_ADDRESS = r"[A-Za-z0-9_.:][A-Za-z0-9_.:-]*(%[A-Za-z0-9_.-]+)?"
HOST = types.strMatching(_ADDRESS)
# A node's `host`, as Nixus writes it too: an address, perhaps after the user to log in as.
LOGIN = types.strMatching(rf"([A-Za-z0-9_][A-Za-z0-9_.-]*\$?@)?{_ADDRESS}")


def split_login(host: str) -> tuple[str | None, str]:
    """`user@address` (Nixus's form of a node's `host`) as its user, if any, and its address."""
    user, at, address = host.rpartition("@")
    return (user, address) if at else (None, host)


# A node's name names its files (`<name>.nix` and `_fleet/<name>.args.nix` of render and build,
# the testbed's host directory) and is what `--on` selects: a hostname, so labels of letters,
# digits, `_` and `-` between single dots (no `/`, `,`, `@`, `*`, whitespace, leading `.` or `-`),
# and short enough that the names of its files fit in the 255 bytes a file name may have.
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
NODE_NAME = re.compile(rf"(?!.{{241}}){_LABEL}(\.{_LABEL})*")
NODE_NAME_RULE = ("labels of letters, digits, `_' and `-' between single dots, each at most 63 characters and "
                  "not starting with `-', at most 240 characters in all")
# A generated key's name (`wireguard/<network>/<node>`) names its private key file below `keys/`.
KEY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,200})*")
KEY_NAME_RULE = "words of letters, digits, `_', `.' and `-' separated by `/', none starting with `.' or `-'"


def file_in(directory: Path, *parts: str) -> Path:
    """`directory/<parts>`, each part one file name: a path made from fleet data never leaves its
    directory, whatever the data (names are checked when the fleet is loaded; this is the check
    where a path is made, so that no caller can forget it)."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part or len(part.encode()) > 255:
            raise NixusError(f"{part!r} cannot name a file in {directory}: it must be one file name")
    return directory.joinpath(*parts)


def node_file(directory: Path, name: str, suffix: str = "") -> Path:
    """`directory/<name><suffix>`: a file of the node's own."""
    if not NODE_NAME.fullmatch(name):
        raise NixusError(f"`{name}' is not a valid node name ({NODE_NAME_RULE})")
    return file_in(directory, f"{name}{suffix}")


# What follows the type string in each key type's blob (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4,
# OpenSSH PROTOCOL.u2f): ssh's wire format, `string`s and `mpint`s, nothing after them.
_ECDSA_POINT = {"nistp256": 65, "nistp384": 97, "nistp521": 133}  # uncompressed: 0x04, x, y
SSH_KEY_FIELDS = {
    "ssh-ed25519": ("ed25519",),
    "ssh-rsa": ("mpint", "mpint"),  # e, n
    "ssh-dss": ("mpint", "mpint", "mpint", "mpint"),  # p, q, g, y
    "ecdsa-sha2-nistp256": ("nistp256", "point"),
    "ecdsa-sha2-nistp384": ("nistp384", "point"),
    "ecdsa-sha2-nistp521": ("nistp521", "point"),
    "sk-ssh-ed25519@openssh.com": ("ed25519", "string"),  # the key, its FIDO application
    "sk-ecdsa-sha2-nistp256@openssh.com": ("nistp256", "point", "string"),
}
# `<type> <base64> [comment]` on one line (a .pub file's final newline allowed, as NixOS's
# singleLineStr allows it); the comment of printable characters only.
_PUBLIC_KEY = re.compile(r"(\S+) ([A-Za-z0-9+/]+={0,2})( [^\x00-\x1f\x7f]*)?\n?")


def _ssh_strings(blob: bytes) -> list[bytes] | None:
    """The `string`s (and `mpint`s) a blob is made of, or None if one runs past its end."""
    out, at = [], 0
    while at < len(blob):
        size = int.from_bytes(blob[at:at + 4], "big")
        if at + 4 + size > len(blob):
            return None
        out.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return out


def _field_ok(kind: str, value: bytes, curve: bytes | None) -> bool:
    """Whether `value` is what the key format has there (a key nobody could use is no key)."""
    if kind == "ed25519":
        return len(value) == 32
    if kind == "mpint":  # positive, in its shortest form
        return bool(value) and value[0] < 0x80 and not (value[0] == 0 and (len(value) == 1 or value[1] < 0x80))
    if kind == "point":
        return curve is not None and len(value) == _ECDSA_POINT[curve.decode()] and _on_curve(curve.decode(), value)
    if kind == "string":
        return True
    return value == kind.encode()  # the curve's name, which the type names too


def _on_curve(curve: str, point: bytes) -> bool:
    """Whether an ECDSA key's point lies on its curve (as ssh checks when it loads the key)."""
    # Imported here: only a fleet with an ECDSA key needs it.
    from cryptography.hazmat.primitives.asymmetric import ec
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(
            {"nistp256": ec.SECP256R1(), "nistp384": ec.SECP384R1(), "nistp521": ec.SECP521R1()}[curve], point)
    except ValueError:
        return False
    return True


def valid_public_key(text: str) -> bool:
    """An OpenSSH public key line whose base64 blob is a key of the type its first word names."""
    m = _PUBLIC_KEY.fullmatch(text)
    if not m or m.group(1) not in SSH_KEY_FIELDS:
        return False
    try:
        blob = base64.b64decode(m.group(2), validate=True)
    except (binascii.Error, ValueError):
        return False
    fields, parts = SSH_KEY_FIELDS[m.group(1)], _ssh_strings(blob)
    if parts is None or len(parts) != 1 + len(fields) or parts[0] != m.group(1).encode():
        return False
    curve = next((p for k, p in zip(fields, parts[1:]) if k in _ECDSA_POINT), None)
    return all(_field_ok(kind, value, curve) for kind, value in zip(fields, parts[1:]))


def _keyscan_key(line: str) -> str:
    """The key of an `ssh-keyscan` line (`host type base64`): the host field is not the node's to say."""
    return line.split(" ", 1)[1]


public_key = types.addCheck(types.str, valid_public_key, "sshPublicKey",
                            "SSH public key (`<type> <base64> [comment]`)")
# A host key as written by hand, or pasted from `ssh-keyscan` (its host field dropped).
host_key = types.coercedTo(
    types.addCheck(types.str, lambda s: " " in s and valid_public_key(_keyscan_key(s)), "sshKeyscanLine",
                   "ssh-keyscan line"), _keyscan_key, public_key)
