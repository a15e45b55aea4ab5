"""Raw Nix inside a fleet.py: `nix.expr("pkgs.hello")`, `nix.path("./web1.nix")`.

A plain Python string is always a Nix string; these helpers are the only way to write Nix code.
"""

from .nixlang import NixExpr, NixPath


def expr(code: str) -> NixExpr:
    """A Nix expression, kept verbatim (for example `pkgs.hello` inside a node's configuration)."""
    return NixExpr(code)


def path(p: str) -> NixPath:
    """A Nix path literal, relative to the fleet file."""
    return NixPath(p)
