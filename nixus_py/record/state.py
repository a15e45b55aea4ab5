"""nixus's state: a SQLite database of every deploy, per host what was deployed and how it went."""

from __future__ import annotations

import getpass
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluate.errors import NixusError
from ..settings import private_dir

if TYPE_CHECKING:  # pydantic is imported when a record is read: a deploy only writes them
    from .records import HostRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
  id INTEGER PRIMARY KEY,
  started REAL NOT NULL,
  finished REAL,
  user TEXT NOT NULL,
  fleet_file TEXT NOT NULL,
  git_rev TEXT,
  git_dirty INTEGER,
  goal TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS host_deploys (
  id INTEGER PRIMARY KEY,
  deploy_id INTEGER NOT NULL REFERENCES deploys(id),
  node TEXT NOT NULL,
  old_path TEXT,
  new_path TEXT,
  rendered TEXT NOT NULL,
  settings TEXT NOT NULL,
  outcome TEXT NOT NULL,
  started REAL NOT NULL,
  finished REAL,
  log TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS host_deploys_node ON host_deploys(node, id);
"""

# Outcomes after which the host runs what was recorded.
DEPLOYED = ("switched", "unchanged", "switched-unwatched")
SWITCHING = "switching"  # a host's switch has started; its outcome is not known yet


def cut_short_outcome(current: str | None, old: str | None, new: str | None) -> str:
    """The outcome of a switch whose deployer died, by what the host runs afterwards."""
    if current is not None and current == new:
        return "switched-unwatched"  # the host committed; the deployer did not live to see it
    return "not-switched" if current is not None and current == old else "interrupted"


class StateError(NixusError):
    """The state database cannot be read or written."""


def _unusable(path: Path | None, e: Exception) -> StateError:
    return StateError(f"the state database {path or ':memory:'} cannot be used ({e}). It holds nixus's record "
                      "of every deploy: put back a copy from a backup, or move it aside (nixus then starts a "
                      "new history at #1, and plans compare with nothing deployed).")


class State:
    """The database in a state directory (created on first use)."""

    def __init__(self, state_dir: Path | None):
        """The state directory's database (`None`: an empty one in memory); StateError if it
        cannot be used."""
        path = private_dir(state_dir) / "state.sqlite3" if state_dir is not None else None
        self.path = path
        try:
            if path is not None:
                if not path.exists() and any(p.name != "deploy.lock" for p in path.parent.iterdir()):
                    # Other state is there (keys, builds): a database that was, and is gone.
                    print(f"note: no state database at {path}: nixus starts a new one, and its history at #1",
                          file=sys.stderr)
                path.touch(mode=0o600)  # before SQLite makes it with the umask's mode (its journals copy it)
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
            self.db = sqlite3.connect(path or ":memory:", timeout=30)
            self.db.row_factory = sqlite3.Row
            # A write-ahead log makes each record a cheap append instead of a full journal sync; the
            # database stays consistent, and a power cut can lose only the newest records.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise _unusable(path, e) from None

    @classmethod
    def for_reading(cls, state_dir: Path) -> State:
        """The database for a command that only reads it: when it cannot be used, a warning and an
        empty one, so that the command still answers from what it can read live."""
        try:
            return cls(state_dir)
        except StateError as e:
            print(f"warning: {e} Answering as if nothing had been recorded.", file=sys.stderr)
            return cls(None)

    def check(self) -> None:
        """Before a deploy changes any host: the whole database reads back (SQLite's quick check)."""
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.Error as e:
            raise _unusable(self.path, e) from None
        if problems != ["ok"]:
            raise _unusable(self.path, Exception("; ".join(problems[:3])))

    def begin_deploy(self, fleet_file: Path, goal: str, git_rev: str | None = None,
                     git_dirty: bool | None = None) -> int:
        """A new deploy's record (written before any host changes: StateError if it cannot be)."""
        try:
            with self.db:
                cur = self.db.execute(
                    "INSERT INTO deploys (started, user, fleet_file, git_rev, git_dirty, goal) VALUES (?,?,?,?,?,?)",
                    (time.time(), getpass.getuser(), str(fleet_file), git_rev,
                     None if git_dirty is None else int(git_dirty), goal))
        except sqlite3.Error as e:
            raise _unusable(self.path, e) from None
        return int(cur.lastrowid)

    def record_host(self, deploy_id: int, node: str, *, rendered: str, settings: str, outcome: str,
                    old_path: str | None = None, new_path: str | None = None, started: float | None = None,
                    log: str = "", row: int | None = None) -> int:
        """A host's record (`row`: the one its start wrote, now completed; `outcome` SWITCHING:
        its start, not finished); its row."""
        now = time.time()
        finished = None if outcome == SWITCHING else now
        with self.db:
            if row is not None:
                self.db.execute("UPDATE host_deploys SET outcome = ?, finished = ?, log = ?, old_path = ? "
                                "WHERE id = ?", (outcome, finished, log, old_path, row))
                return row
            cur = self.db.execute(
                "INSERT INTO host_deploys (deploy_id, node, old_path, new_path, rendered, settings, outcome, "
                "started, finished, log) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (deploy_id, node, old_path, new_path, rendered, settings, outcome, started or now, finished, log))
        return int(cur.lastrowid)

    def settle_cut_short(self, node: str, current: str | None) -> None:
        """A switch of `node` that a deployer started and never heard the end of (it died): its
        outcome, from what the host runs now. Called with the deploy lock held."""
        row = self.db.execute("SELECT id, old_path, new_path FROM host_deploys WHERE node = ? AND outcome = ? "
                              "ORDER BY id DESC LIMIT 1", (node, SWITCHING)).fetchone()
        if row is None:
            return
        outcome = cut_short_outcome(current, row["old_path"], row["new_path"])
        with self.db:
            self.db.execute("UPDATE host_deploys SET outcome = ?, finished = ? WHERE id = ?",
                            (outcome, time.time(), row["id"]))

    def finish_deploy(self, deploy_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE deploys SET finished = ? WHERE id = ?", (time.time(), deploy_id))

    def history(self, nodes: list[str] | None = None, limit: int = 50) -> list[dict]:
        """Deploys, newest first, each with its per-host records (for the given nodes)."""
        deploys = self.db.execute("SELECT * FROM deploys ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for d in deploys:
            rows = self.db.execute("SELECT node, outcome, old_path, new_path, started, finished FROM host_deploys "
                                   "WHERE deploy_id = ? ORDER BY node", (d["id"],)).fetchall()
            hosts = [dict(r) for r in rows if nodes is None or r["node"] in nodes]
            if hosts:
                out.append({**dict(d), "hosts": hosts})
        return out

    def last_record(self, node: str) -> HostRecord | None:
        """The newest record of `node`, whatever its outcome."""
        row = self.db.execute("SELECT * FROM host_deploys WHERE node = ? ORDER BY id DESC LIMIT 1", (node,)).fetchone()
        return None if row is None else _host_record(row)

    def last_deployed_path(self, node: str) -> str | None:
        """The system `node` should run according to the records."""
        rec = self.last_deployed(node)
        return rec.new_path if rec else None

    def last_deployed(self, node: str) -> HostRecord | None:
        """The newest record after which `node` runs what was recorded."""
        row = self._last_deployed(node, "*")
        return None if row is None else _host_record(row)

    def last_deployed_as(self, node: str, system: str) -> HostRecord | None:
        """The newest record after which `node` ran `system`."""
        row = self.db.execute(
            f"SELECT * FROM host_deploys WHERE node = ? AND new_path = ? AND outcome IN ({','.join('?' * len(DEPLOYED))}) "
            "ORDER BY id DESC LIMIT 1", (node, system, *DEPLOYED)).fetchone()
        return None if row is None else _host_record(row)

    def last_deployed_module(self, node: str) -> str | None:
        """The rendered module of `last_deployed`, alone: a plan compares it first, for every node."""
        row = self._last_deployed(node, "rendered")
        return None if row is None else row["rendered"]

    def _last_deployed(self, node: str, columns: str) -> sqlite3.Row | None:
        """The columns of the newest record after which `node` runs what was recorded."""
        return self.db.execute(
            f"SELECT {columns} FROM host_deploys WHERE node = ? AND outcome IN ({','.join('?' * len(DEPLOYED))}) "
            "ORDER BY id DESC LIMIT 1", (node, *DEPLOYED)).fetchone()


def _host_record(row: sqlite3.Row) -> HostRecord:
    from .records import HostRecord
    return HostRecord(**{k: row[k] for k in HostRecord.model_fields})
