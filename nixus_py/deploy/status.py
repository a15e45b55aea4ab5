"""What runs where: live status of hosts against nixus's records, and rolling a host back."""

from __future__ import annotations

import asyncio
import re

from ..evaluate.errors import NixusError
from ..fleet.evaluate import Fleet
from ..record.state import DEPLOYED, SWITCHING, State, cut_short_outcome
from .goals import Goal, Outcome
from .host import HostError
from .journal import Journal
from .switch import SwitchRequest, switch
from .targets import connect, target_for
from .transport import Target

PROFILE = "/nix/var/nix/profiles/system"


async def _probe(target: Target) -> dict:
    try:
        host = await connect(target)
    except HostError as e:
        return {"reachable": False, "error": str(e)}
    try:
        r = await host.run(f"readlink -e /run/current-system; readlink {PROFILE}; readlink -e {PROFILE}",
                           timeout=30, check=False)
    finally:
        await host.close()
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
        if rec and rec.outcome == SWITCHING:  # a deploy died during this switch (or one runs now)
            row["lastOutcome"] = cut_short_outcome(host.get("current"), rec.old_path, rec.new_path)
            if row["lastOutcome"] in DEPLOYED:
                row["recorded"] = rec.new_path
        row["drift"] = bool(host.get("reachable") and row["recorded"] and host.get("current") != row["recorded"])
        rows.append(row)
    return rows


def rollback(fleet: Fleet, node: str, to: int | None) -> str:
    """Switch `node` back to an earlier generation through the same confirm-or-rollback path."""
    config_node = fleet.config["nodes"][node]
    target = target_for(fleet, node)
    journal = Journal(fleet, "rollback")

    async def go() -> str:
        host = await connect(target)
        try:
            current = await host.run(f"readlink {PROFILE}", timeout=30)
            m = re.search(r"system-(\d+)-link", current.stdout)
            if not m:
                raise NixusError(f"{node}: has no system generations to roll back to")
            gen = to if to is not None else int(m.group(1)) - 1
            found = await host.run(f"readlink -e {PROFILE}-{gen}-link", timeout=30, check=False)
            system = found.stdout.strip()
            if found.code != 0 or not system.startswith("/nix/store/"):
                raise NixusError(f"{node}: there is no generation {gen}")
            request = SwitchRequest(journal.switch_id, system, Goal.SWITCH, config_node["switchTimeout"],
                                    config_node["successTimeout"])
            outcome = await switch(host, request, lambda phase: None)
            after = await host.run(f"readlink {PROFILE}", timeout=30, check=False)
        finally:
            await host.close()
        journal.begin(f"rollback to generation {gen}", git=False)
        # The module and settings of the deploy that made that system, so that `plan` compares
        # with what the host runs now (none known: `plan` shows every setting as a change).
        made = journal.state.last_deployed_as(node, system)
        if not journal.record(node, Outcome.of_switch(outcome.state, Goal.SWITCH), old=outcome.old, new=system,
                              log=outcome.log, module=(made.rendered, made.settings) if made else ("", "{}")):
            raise NixusError(f"{node}: rolled back, but not recorded: {journal.unrecorded}")
        journal.finish()
        if not outcome.ok:
            raise NixusError(f"{node}: rollback to generation {gen} did not stick: {outcome.state}")
        made_gen = re.search(r"system-(\d+)-link", after.stdout)
        as_gen = f" as generation {made_gen.group(1)}" if made_gen and int(made_gen.group(1)) != gen else ""
        return f"{node}: now runs the system of generation {gen}{as_gen} ({system})"

    with journal.held():
        return asyncio.run(go())
