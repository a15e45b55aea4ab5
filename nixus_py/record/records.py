"""What the state database holds, as it is read back (by `status`, `rollback` and `plan`)."""

from __future__ import annotations

from pydantic import BaseModel


class HostRecord(BaseModel):
    """One host in one deploy."""

    deploy_id: int
    node: str
    old_path: str | None
    new_path: str | None
    rendered: str
    settings: str
    outcome: str
    started: float
    finished: float | None
    log: str = ""
