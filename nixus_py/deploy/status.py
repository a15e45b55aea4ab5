"""What runs where: live status of hosts against nixus's records, and rolling a host back."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from ..evaluate.errors import NixusError
from ..fleet.evaluate import Fleet
from ..record.state import State
from .run import deploy_lock
from .switch import switch
from .targets import target_for
from .transport import Connection, HostError, Target

PROFILE = "/nix/var/nix/profiles/system"


async def _probe(target: Target) -> dict:
    try:
        conn = await Connection.open(target)
    except HostError as e:
        return {"reachable": False, "error": str(e)}
    try:
        r = await conn.run(f"readlink -e /run/current-system; readlink {PROFILE}; readlink -e {PROFILE}",
                           timeout=30, check=False)
    finally:
        await conn.close()
    lines = (r.stdout.splitlines() + ["", "", ""])[:3]
    gen = re.search(r"system-(\d+)-link", lines[1])
    return {"reachable": True, "current": lines[0] or None, "generation": int(gen.group(1)) if gen else None,
            "profile": lines[2] or None}


def status(fleet: Fleet, nodes: list[str]) -> list[dict]:
    """Per host: the recorded deploy, what the host really runs (checked live, in parallel), drift."""
    state = State.for_reading(fleet.state_dir)
    targets = [target_for(fleet, n) for n in nodes]

    async def probe_all() -> list[dict]:
        return list(await asyncio.gather(*(_probe(t) for t in targets)))

    live = asyncio.run(probe_all())
    rows = []
    for name, host in zip(nodes, live):
        rec = state.last_record(name)
        row = {"node": name, **host, "lastOutcome": rec.outcome if rec else None,
               "lastTime": rec.finished if rec else None, "recorded": state.last_deployed_path(name)}
        row["drift"] = bool(host.get("reachable") and row["recorded"] and host.get("current") != row["recorded"])
        rows.append(row)
    return rows


def rollback(fleet: Fleet, node: str, to: int | None) -> str:
    """Switch `node` back to an earlier generation through the same confirm-or-rollback path."""
    config_node = fleet.config["nodes"][node]
    target = target_for(fleet, node)
    state = State(fleet.state_dir)
    state.check()  # the record must be writable before the host changes

    async def go() -> str:
        conn = await Connection.open(target)
        try:
            current = await conn.run(f"readlink {PROFILE}", timeout=30)
            m = re.search(r"system-(\d+)-link", current.stdout)
            if not m:
                raise NixusError(f"{node}: has no system generations to roll back to")
            gen = to if to is not None else int(m.group(1)) - 1
            found = await conn.run(f"readlink -e {PROFILE}-{gen}-link", timeout=30, check=False)
            system = found.stdout.strip()
            if found.code != 0 or not system.startswith("/nix/store/"):
                raise NixusError(f"{node}: there is no generation {gen}")
            deploy_id = f"rollback-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            outcome = await switch(conn, deploy_id, system, "switch", config_node["switchTimeout"],
                                   config_node["successTimeout"], lambda phase: None)
        finally:
            await conn.close()
        record = state.begin_deploy(fleet.file, f"rollback to generation {gen}")
        prev = state.last_deployed(node)
        state.record_host(record, node, rendered=prev.rendered if prev else "", settings=prev.settings if prev else "{}",
                          outcome="switched" if outcome.ok else ("rolled-back" if "rolled-back" in outcome.state
                                                                 else "failed"),
                          old_path=outcome.old, new_path=system, log=outcome.log)
        state.finish_deploy(record)
        if not outcome.ok:
            raise NixusError(f"{node}: rollback to generation {gen} did not stick: {outcome.state}")
        return f"{node}: now on generation {gen} ({system})"

    with deploy_lock(fleet.state_dir):
        return asyncio.run(go())
