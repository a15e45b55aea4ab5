"""Secret files: read locally, sent over sftp to a per-generation directory on the host, and
installed by the switcher with that generation, so a rollback restores its secrets too.

Contents never go into the store, the rendered Nix, a command line or a log.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evaluate.errors import NixusError
from ..fleet.lock import key_file
from ..nixlang import quote_string
from .host import Shell

REMOTE_DIR = "/nix/var/nixus/secrets"
STAGING_DIR = ".nixus-secrets"  # in the login user's home, when that is not root
_SECRET_NAME = re.compile(r"[^/\x00-\x20\x7f]+")  # a file name, and a field of the tab-separated manifest


@dataclass(frozen=True)
class Secret:
    name: str
    content: bytes
    path: str
    user: str
    group: str
    mode: str


def node_secrets(name: str, node: Any, state_dir: Path, fleet_dir: Path, keys_made: bool = True) -> list[Secret]:
    """The node's `secrets`, with their content read from local files or nixus's generated keys
    (without `keys_made`, as commands that only read see them: a key not made yet is left out)."""
    out: list[Secret] = []
    paths: dict[str, str] = {}
    for sname in sorted(node["secrets"]):
        if not _SECRET_NAME.fullmatch(sname) or sname in (".", ".."):
            raise NixusError(f"nodes.{name}.secrets.{quote_string(sname)}: a secret's name is a file name on "
                             "the host: no /, whitespace or control characters")
        s = node["secrets"][sname]
        if s["generatedKey"] is not None:
            source = key_file(state_dir, s["generatedKey"])
            if not keys_made and not source.exists():
                continue
        elif s["source"] is not None:
            source = (fleet_dir / s["source"]).resolve()
        else:
            raise NixusError(f"nodes.{name}.secrets.{sname}: set `source` (a local file) or `generatedKey`")
        try:
            if not stat.S_ISREG(source.stat().st_mode):  # a directory fails, a FIFO would wait forever
                raise NixusError(f"nodes.{name}.secrets.{sname}: {source} is not a regular file")
            content = source.read_bytes()
        except OSError as e:
            raise NixusError(f"nodes.{name}.secrets.{sname}: cannot read {source}: {e.strerror}") from None
        if s["path"] in paths:
            raise NixusError(f"nodes.{name}.secrets.{sname}: its path {s['path']} is the path of "
                             f"nodes.{name}.secrets.{paths[s['path']]} too")
        paths[s["path"]] = sname
        out.append(Secret(sname, content, s["path"], s["user"], s["group"], s["mode"]))
    return out


def fingerprint(secrets: list[Secret]) -> str:
    """Changes when any secret's content or placement does (the content itself is not revealed)."""
    h = hashlib.sha256()
    for s in secrets:
        h.update(f"{s.name}\t{s.path}\t{s.user}\t{s.group}\t{s.mode}\t".encode())
        h.update(hashlib.sha256(s.content).digest())
    return h.hexdigest()


async def stage(shell: Shell, system: str, secrets: list[Secret]) -> None:
    """Put the secrets of `system` into its own directory on the host (not yet installed): the
    files under files/, a manifest saying where each goes, and their fingerprint.

    The files are written as the login user (over ssh, by its sftp session). As root it writes
    them in place; any other user writes them into a directory of its own (mode 0700), which a
    root command then moves into place, owned by root."""
    generation = Path(system).name
    as_root = shell.target.user == "root"
    directory = f"{REMOTE_DIR}/{generation}" if as_root else f"{STAGING_DIR}/{generation}"
    if not as_root:  # a fresh directory, and where it is (the user's home)
        home = (await shell.run(f"rm -rf {shlex.quote(directory)} && pwd", timeout=30, root=False)).stdout.strip()
    await shell.make_dirs(f"{directory}/files", 0o700)
    manifest = "".join(f"{s.name}\t{s.path}\t{s.user}\t{s.group}\t{s.mode}\n" for s in secrets)
    files = {f"files/{s.name}": s.content for s in secrets}
    files |= {"manifest": manifest.encode(), "fingerprint": fingerprint(secrets).encode()}
    await asyncio.gather(*(shell.write_file(f"{directory}/{name}", data, 0o400) for name, data in files.items()))
    if not as_root:
        staged, target = shlex.quote(f"{home}/{directory}"), shlex.quote(f"{REMOTE_DIR}/{generation}")
        await shell.run(f"mkdir -p -m 700 {REMOTE_DIR} && rm -rf {target} && "
                        f"chown -R root:root {staged} && mv {staged} {target}", timeout=30)
