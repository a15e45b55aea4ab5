"""The fleet as a graph of nodes and relations (networkx), and the deploy waves it implies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from ..evaluate.errors import NixusError


def fleet_graph(config: Mapping) -> nx.MultiDiGraph:
    """Nodes with their relations: declared by modules, plus each node's `deployAfter`."""
    nodes = config["nodes"]
    g = nx.MultiDiGraph()
    for name in sorted(nodes):
        g.add_node(name, enable=nodes[name]["enable"], tags=list(nodes[name]["tags"]))
    for name in sorted(nodes):
        for before in nodes[name]["deployAfter"]:
            if before not in nodes:
                raise NixusError(f"nodes.{name}.deployAfter names `{before}', which is not a node")
            g.add_edge(before, name, kind="deployAfter", orders=True, why=f"nodes.{name}.deployAfter")
    for r in config["relations"]:
        for end in (r["from"], r["to"]):
            if end not in nodes:
                raise NixusError(f"a `{r['kind']}' relation names `{end}', which is not a node ({r['why']})")
        g.add_edge(r["from"], r["to"], kind=r["kind"], orders=r["orders"], why=r["why"])
    return g


def deploy_waves(g: nx.MultiDiGraph) -> list[list[str]]:
    """Groups of nodes to deploy one after another: topological generations of ordering edges."""
    order = nx.DiGraph()
    order.add_nodes_from(g.nodes)
    order.add_edges_from((a, b) for a, b, data in g.edges(data=True) if data["orders"])
    try:
        return [sorted(wave) for wave in nx.topological_generations(order)]
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(order)
        names = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        raise NixusError(f"the deploy order has a cycle: {names}") from None


def graph_data(g: nx.MultiDiGraph) -> dict[str, Any]:
    """The graph as JSON data: nodes, edges and waves."""
    return {
        "nodes": [{"name": n, **g.nodes[n]} for n in sorted(g.nodes)],
        "edges": [{"from": a, "to": b, **d} for a, b, d in sorted(g.edges(data=True), key=_edge_key)],
        "waves": deploy_waves(g),
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
    out += [f"wave {i + 1}: {' '.join(w)}" for i, w in enumerate(deploy_waves(g))]
    return "\n".join(out) + "\n"


def _edge_key(e: tuple) -> tuple:
    a, b, d = e
    return (a, b, d["kind"], d["why"])
