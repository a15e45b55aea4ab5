"""`nixus plan`: what a deploy would change on each host, and why, before anything runs."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, TypeAdapter

from .deploy.secrets import node_secrets
from .evaluate.submodule import DeferredModule
from .fleet.evaluate import Fleet
from .record.state import State
from .render.node import Renderer
from .render.settings import NodeSettings, Setting, node_settings


_RECORDED = TypeAdapter(NodeSettings)


def settings_from_json(text: str) -> NodeSettings:
    """The settings a deploy recorded (render.settings.settings_json), checked as they are read."""
    return _RECORDED.validate_json(text)


class Change(BaseModel):
    """One option path of one host: a value added, removed, or changed."""

    path: str
    kind: Literal["added", "removed", "changed"]
    old: str | None = None
    new: str | None = None
    why: str

    def text(self) -> str:
        if self.kind == "changed":
            return f"{self.path}: {self.old} → {self.new} because {self.why}"
        sign, value = ("+", self.new) if self.kind == "added" else ("-", self.old)
        return f"{self.path}: {sign} {value} because {self.why}"


class HostPlan(BaseModel):
    node: str
    status: Literal["new", "changed", "unchanged"]
    changes: list[Change]
    # What the host's module reads beyond its own text, which a plan does not evaluate: `files`
    # (modules and files it imports), `fleet code` (functions of the fleet's .nix files).
    unread: list[str] = []


class Plan(BaseModel):
    hosts: list[HostPlan]

    @property
    def changed(self) -> list[str]:
        return [h.node for h in self.hosts if h.status != "unchanged"]

    @property
    def unchanged(self) -> list[str]:
        return [h.node for h in self.hosts if h.status == "unchanged"]


def _why(s: Setting) -> str:
    why, origin = s.get("why", ""), s["origin"]
    if not why:
        return origin
    return why if origin in why or "(" in why else f"{why} ({origin})"


def diff_settings(old: NodeSettings, new: NodeSettings) -> list[Change]:
    """Per option path: a single value that changed, or the values added and removed."""
    changes: list[Change] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, []), new.get(path, [])
        if [s["value"] for s in a] == [s["value"] for s in b]:
            continue
        if len(a) == 1 and len(b) == 1:
            changes.append(Change(path=path, kind="changed", old=a[0]["value"], new=b[0]["value"], why=_why(b[0])))
            continue
        removed = Counter(s["value"] for s in a) - Counter(s["value"] for s in b)
        added = Counter(s["value"] for s in b) - Counter(s["value"] for s in a)
        for s in a:
            if removed[s["value"]] > 0:
                removed[s["value"]] -= 1
                changes.append(Change(path=path, kind="removed", old=s["value"], why=_why(s)))
        for s in b:
            if added[s["value"]] > 0:
                added[s["value"]] -= 1
                changes.append(Change(path=path, kind="added", new=s["value"], why=_why(s)))
    return changes


def plan_fleet(fleet: Fleet, nodes: list[str], state: State) -> Plan:
    """Compare what would be rendered now with what was last deployed to each host."""
    hosts = []
    config_nodes = fleet.config["nodes"]
    renderer = Renderer(fleet.file, fleet.rendered_dir)
    for node in nodes:
        # A secret that cannot be delivered fails the plan as it would fail the deploy.
        node_secrets(node, config_nodes[node], fleet.state_dir, fleet.file.parent, keys_made=False)
        configuration = config_nodes[node]["configuration"]
        deployed = state.last_deployed_module(node)
        if deployed is not None and _renders_as(renderer, node, configuration, deployed):
            unread = [_UNREAD[r] for r in sorted(renderer.mutable_inputs.get(node, ()))]
            hosts.append(HostPlan(node=node, status="unchanged", changes=[], unread=unread))
            continue
        now = node_settings(configuration, fleet.file)
        record = state.last_deployed(node)
        if record is None:
            hosts.append(HostPlan(node=node, status="new", changes=diff_settings({}, now)))
            continue
        changes = diff_settings(settings_from_json(record.settings), now)
        hosts.append(HostPlan(node=node, status="changed" if changes else "unchanged", changes=changes))
    return Plan(hosts=hosts)


_UNREAD = {"files": "files", "values": "fleet code"}


def _renders_as(renderer: Renderer, node: str, configuration: DeferredModule, deployed: str) -> bool:
    """Whether the node's module is still the one deployed: then no setting can have changed, and
    comparing the text is much cheaper than flattening and diffing every setting."""
    try:
        return renderer.node(node, configuration) == deployed
    except Exception:  # noqa: BLE001 - a module that cannot be rendered yet is compared setting by setting
        return False


def plan_text(plan: Plan) -> str:
    lines = []
    for h in plan.hosts:
        if h.status == "unchanged":
            if h.unread:
                lines.append(f"{h.node}: no setting changed, but it reads {' and '.join(h.unread)} that a plan "
                             "does not evaluate (a deploy builds it and compares the systems)")
            continue
        head = f"{h.node}: new host, never deployed" if h.status == "new" else f"{h.node}: {len(h.changes)} changes"
        lines.append(head)
        lines += [f"  {c.text()}" for c in h.changes]
    lines.append(f"Summary: {len(plan.changed)} hosts change ({', '.join(plan.changed) or 'none'}), "
                 f"{len(plan.unchanged)} unchanged ({', '.join(plan.unchanged) or 'none'}).")
    return "\n".join(lines) + "\n"
