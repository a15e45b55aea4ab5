"""What every command that changes hosts (`deploy`, `rollback`) holds and writes: the fleet's
deploy lock, the state database (checked before any host changes), the id its switches carry
on the hosts, and one record per host, written as the host settles."""

from __future__ import annotations

import fcntl
import getpass
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..evaluate.errors import NixusError
from ..fleet.evaluate import Fleet
from ..fleet.formats import node_file
from ..record.state import SWITCHING, State, StateError
from ..render.node import render_node
from ..render.settings import node_settings, settings_json
from ..settings import private_dir


@contextmanager
def deploy_lock(state_dir: Path) -> Iterator[None]:
    """One deploy of a fleet at a time: a second one stops and names the first."""
    path = private_dir(state_dir) / "deploy.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise NixusError(f"another nixus deploy of this fleet is running ({holder}); wait for it "
                             "to finish") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, {getpass.getuser()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def git_revision(directory: Path) -> tuple[str | None, bool | None]:
    """The fleet's git commit and whether the work tree has changes (None outside git)."""
    rev = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True)
    if rev.returncode != 0:
        return None, None
    dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain"], capture_output=True, text=True)
    return rev.stdout.strip(), bool(dirty.stdout.strip())


class Journal:
    """One run that changes hosts, from its lock to its last record."""

    def __init__(self, fleet: Fleet, kind: str = ""):
        self.fleet = fleet
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.switch_id = f"{kind}-{stamp}" if kind else stamp  # names each host's switch directory
        self.number: int | None = None  # the run's number in the state database (`history`)
        self.unrecorded: str | None = None  # why a host's record could not be written
        self.rows: dict[str, int] = {}  # each host's record, from its start on

    @contextmanager
    def held(self) -> Iterator[Journal]:
        """The fleet's deploy lock, and the state database, which must read back before any
        host changes."""
        with deploy_lock(self.fleet.state_dir):
            self.state = State(self.fleet.state_dir)
            self.state.check()
            yield self

    def begin(self, what: str, git: bool = True) -> None:
        """The run's own record (`what`: its goal), with the fleet's git revision unless not wanted."""
        rev, dirty = git_revision(self.fleet.file.parent) if git else (None, None)
        self.number = self.state.begin_deploy(self.fleet.file, str(what), rev, dirty)

    def record(self, node: str, outcome: str, *, old: str | None, new: str | None, log: str,
               started: float | None = None, module: tuple[str, str] | None = None) -> bool:
        """The host's record, written as soon as it has settled (a deployer that dies later keeps
        it), with its rendered module and settings (`module`, else the fleet's now); False, and
        `unrecorded` says why, when it cannot be written."""
        assert self.number is not None, "a host's record before the run's own"
        rendered, settings = module or self._module(node)
        try:
            self.rows[node] = self.state.record_host(
                self.number, node, rendered=rendered, settings=settings, outcome=str(outcome), old_path=old,
                new_path=new, started=started, log=log, row=self.rows.get(node))
        except (StateError, sqlite3.Error) as e:
            self.unrecorded = str(e)
            return False
        return True

    def start(self, node: str, *, old: str | None, new: str | None, started: float) -> bool:
        """The host's record as its switch starts (a deployer that dies during the switch leaves
        it, and the next run settles it from what the host runs); False when it cannot be written."""
        return self.record(node, SWITCHING, old=old, new=new, log="", started=started)

    def settle_cut_short(self, node: str, current: str | None) -> None:
        """An earlier run's switch of `node` whose end nobody saw: settled from what it runs."""
        try:
            self.state.settle_cut_short(node, current)
        except sqlite3.Error:  # it stays a start without an end: `history` still shows it
            pass

    def finish(self) -> None:
        """The run is over; left unfinished when a record is missing (`history` says so)."""
        if self.unrecorded is None and self.number is not None:
            self.state.finish_deploy(self.number)

    def _module(self, node: str) -> tuple[str, str]:
        """The node's rendered module (as built, else rendered now) and its settings."""
        conf = self.fleet.config["nodes"][node]["configuration"]
        rendered_file = node_file(self.fleet.rendered_dir, node, ".nix")
        rendered = rendered_file.read_text() if rendered_file.exists() else \
            render_node(node, conf, self.fleet.file, rendered_file.parent)
        return rendered, settings_json(node_settings(conf, self.fleet.file))
