"""Node selection for every command: `--on web1,web*,@tag`."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from ..evaluate.errors import NixusError


def select_nodes(nodes: Mapping[str, Any], selector: str | None) -> list[str]:
    """Names of the nodes matching a comma-separated list of names, globs and `@tags`."""
    names = sorted(nodes)
    if not selector:
        return names
    parts = [p.strip() for p in selector.split(",") if p.strip()]
    if not parts:
        raise NixusError(f"--on {selector!r}: names no node (give names, globs or @tags, comma-separated)")
    chosen: set[str] = set()
    for part in parts:
        if part.startswith("@"):
            matched = {n for n in names if part[1:] in nodes[n]["tags"]}
        else:
            matched = set(fnmatch.filter(names, part))
        if not matched:
            raise NixusError(f"--on {selector}: `{part}' matches no node (nodes: {', '.join(names) or 'none'})")
        chosen |= matched
    return [n for n in names if n in chosen]
