"""The fleet as a graph of nodes and relations, and the deploy order it implies.

Relations come from the modules (`relations`) and from each node's `deployAfter`. Those that
order deploys give every node the nodes it must wait for; `nixus graph` shows the whole graph
(networkx) with the waves, the topological generations of that order.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..evaluate.errors import NixusError
from .provenance import Fact

if TYPE_CHECKING:
    import networkx as nx

    from .evaluate import Fleet


@dataclass(frozen=True, order=True)
class Relation:
    """One edge: `source` relates to `target` (`kind`), because of the definition `why`."""

    source: str
    target: str
    kind: str
    why: str
    orders: bool  # whether `target` deploys after `source`


def relations(fleet: Fleet) -> list[Relation]:
    """Every relation of the fleet, sorted: declared by modules, plus each node's `deployAfter`."""
    config = fleet.config
    nodes = config["nodes"]
    out = []
    for name in sorted(nodes):
        for before in nodes[name]["deployAfter"]:
            if before not in nodes:
                raise _nodes(fleet).error((name, "deployAfter"), f"names `{before}', which is not a node")
            out.append(Relation(before, name, "deployAfter", f"nodes.{name}.deployAfter", True))
    for r in config["relations"]:
        for end in (r["from"], r["to"]):
            if end not in nodes:
                raise NixusError(f"a `{r['kind']}' relation names `{end}', which is not a node ({r['why']})")
        out.append(Relation(r["from"], r["to"], r["kind"], r["why"], r["orders"]))
    return sorted(out)


def _nodes(fleet: Fleet) -> Fact:
    return Fact(fleet.evaluation.options["nodes"], ("nodes",))


def deploy_order(fleet: Fleet) -> dict[str, set[str]]:
    """Per node, the nodes that must be deployed before it; a cycle is an error naming it (and
    where each of its `deployAfter` steps was written)."""
    before: dict[str, set[str]] = {name: set() for name in fleet.config["nodes"]}
    steps: dict[tuple[str, str], str] = {}
    for r in relations(fleet):
        steps.setdefault((r.source, r.target), r.why)
        if r.orders and r.source != r.target:
            before[r.target].add(r.source)
    try:
        tuple(graphlib.TopologicalSorter(before).static_order())
    except graphlib.CycleError as e:
        ring = e.args[1][:-1]  # each deploys before the next; the last before the first
        first = ring.index(min(ring))
        cycle = ring[first:] + ring[:first + 1]
        whys = [steps.get((a, b), "") for a, b in zip(cycle, cycle[1:])]
        where = sorted({str(loc) for a, b in zip(cycle, cycle[1:]) if steps.get((a, b), "").endswith(".deployAfter")
                        for loc in _nodes(fleet).defined_at((b, "deployAfter"))})
        raise NixusError(f"the deploy order has a cycle: {' -> '.join(cycle)} (by {', '.join(whys)}"
                         + (f"; defined at {', '.join(where)})" if where else ")")) from None
    return before


def deploy_waves(fleet: Fleet) -> list[list[str]]:
    """Groups of nodes that may deploy together, one group after another."""
    sorter = graphlib.TopologicalSorter(deploy_order(fleet))
    sorter.prepare()
    waves = []
    while sorter.is_active():
        wave = sorted(sorter.get_ready())
        sorter.done(*wave)
        waves.append(wave)
    return waves


def fleet_graph(fleet: Fleet) -> nx.MultiDiGraph:
    """Nodes with their relations as a networkx graph."""
    import networkx as nx  # only `nixus graph` needs it, and it takes a while to import

    nodes = fleet.config["nodes"]
    g = nx.MultiDiGraph(waves=deploy_waves(fleet))
    for name in sorted(nodes):
        g.add_node(name, enable=nodes[name]["enable"], tags=list(nodes[name]["tags"]))
    for r in relations(fleet):
        g.add_edge(r.source, r.target, kind=r.kind, orders=r.orders, why=r.why)
    return g


def graph_data(g: nx.MultiDiGraph) -> dict[str, Any]:
    """The graph as JSON data: nodes, edges and waves."""
    return {
        "nodes": [{"name": n, **g.nodes[n]} for n in sorted(g.nodes)],
        "edges": [{"from": a, "to": b, **d} for a, b, d in sorted(g.edges(data=True), key=_edge_key)],
        "waves": g.graph["waves"],
    }


def graph_dot(g: nx.MultiDiGraph) -> str:
    """Graphviz source for the graph (edge labels are the relation kinds)."""
    lines = ["digraph fleet {"]
    lines += [f'  "{n}";' for n in sorted(g.nodes)]
    for a, b, d in sorted(g.edges(data=True), key=_edge_key):
        style = "" if d["orders"] else ", style=dashed"
        lines.append(f'  "{a}" -> "{b}" [label="{d["kind"]}"{style}];')
    return "\n".join(lines + ["}"]) + "\n"


def graph_text(g: nx.MultiDiGraph) -> str:
    """Relations and waves for people."""
    out = [f"{a} -> {b}  {d['kind']}{'  (orders deploy)' if d['orders'] else ''}  {d['why']}".rstrip()
           for a, b, d in sorted(g.edges(data=True), key=_edge_key)]
    out += [f"wave {i + 1}: {' '.join(w)}" for i, w in enumerate(g.graph["waves"])]
    return "\n".join(out) + "\n"


def _edge_key(e: tuple) -> tuple:
    a, b, d = e
    return (a, b, d["kind"], d["why"])
