"""What the fleet can read of a node's NixOS configuration before NixOS evaluates it.

nixus leaves a node's `configuration` to NixOS at build time, but a few of its options are
facts that other nodes need (Nixus's `networking.public.ipv4`, the endpoint of a VPN server).
`nixos_option` reads one such option from the definitions nixus holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..evaluate.modulevalues import DeferredModule
from ..evaluate.properties import force

MISSING: Any = object()


def nixos_option(configuration: DeferredModule, path: tuple[str, ...], default: Any = MISSING) -> Any:
    """The value of option `path` in a node's configuration, as far as its definitions that are
    data say (the only definition wins; several are not merged yet); `default` if none says."""
    found = MISSING
    for d in configuration.definitions:
        value: Any = force(d.value)
        for name in path:
            if not isinstance(value, Mapping) or name not in value:
                value = MISSING
                break
            value = force(value[name])
        if value is not MISSING:
            found = value
    if found is MISSING:
        if default is MISSING:
            raise KeyError(path)
        return default
    return found
