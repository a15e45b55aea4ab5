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


SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
# `<type> <base64> [comment]` on one line (a .pub file's final newline allowed, as NixOS's
# singleLineStr allows it); the comment of printable characters only.
_PUBLIC_KEY = re.compile(r"(\S+) ([A-Za-z0-9+/]+={0,2})( [^\x00-\x1f\x7f]*)?\n?")


def valid_public_key(text: str) -> bool:
    """An OpenSSH public key line whose base64 blob names the same key type as its first word."""
    m = _PUBLIC_KEY.fullmatch(text)
    if not m or m.group(1) not in SSH_KEY_TYPES:
        return False
    try:
        blob = base64.b64decode(m.group(2), validate=True)
    except (binascii.Error, ValueError):
        return False
    size = int.from_bytes(blob[:4], "big")
    return blob[4:4 + size] == m.group(1).encode()


def _keyscan_key(line: str) -> str:
    """The key of an `ssh-keyscan` line (`host type base64`): the host field is not the node's to say."""
    return line.split(" ", 1)[1]


public_key = types.addCheck(types.str, valid_public_key, "sshPublicKey",
                            "SSH public key (`<type> <base64> [comment]`)")
# A host key as written by hand, or pasted from `ssh-keyscan` (its host field dropped).
host_key = types.coercedTo(
    types.addCheck(types.str, lambda s: " " in s and valid_public_key(_keyscan_key(s)), "sshKeyscanLine",
                   "ssh-keyscan line"), _keyscan_key, public_key)
