"""Live per-host progress: a rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only for a terminal, where its table is drawn
    from rich.live import Live
    from rich.table import Table


class HostProgress:
    """Tracks each host's phase; use as a context manager and call `update(host, phase)`."""

    def __init__(self, hosts: list[str], title: str, stream=None):
        self.stream = stream or sys.stderr
        self.live_mode = self.stream.isatty()
        self.title = title
        self.phases = {h: "waiting" for h in hosts}
        self.details = {h: "" for h in hosts}
        self.started = {h: time.monotonic() for h in hosts}
        self.lock = threading.Lock()
        self.live: Live | None = None

    def __enter__(self) -> HostProgress:
        if self.live_mode:
            from rich.console import Console
            from rich.live import Live
            self.live = Live(self._table(), console=Console(file=self.stream), refresh_per_second=8,
                             transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(exc_type, exc, tb)

    def update(self, host: str, phase: str, detail: str = "") -> None:
        with self.lock:
            self.phases[host] = phase
            if detail:
                self.details[host] = detail
            if self.live is not None:
                self.live.update(self._table())
            else:
                elapsed = time.monotonic() - self.started[host]
                extra = f" {detail}" if detail else ""
                print(f"{host}: {phase}{extra} ({elapsed:.1f}s)", file=self.stream, flush=True)

    def _table(self) -> Table:
        from rich.table import Table
        t = Table(title=self.title, expand=False)
        t.add_column("host")
        t.add_column("phase")
        t.add_column("detail")
        t.add_column("time", justify="right")
        now = time.monotonic()
        for h, phase in self.phases.items():
            t.add_row(h, phase, self.details[h], f"{now - self.started[h]:.1f}s")
        return t
