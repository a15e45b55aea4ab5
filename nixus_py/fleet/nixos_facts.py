"""A node's NixOS configuration: its type, and what the fleet reads of it before NixOS does.

nixus leaves a node's `configuration` to NixOS at build time, but a few of its options are facts
that nixus and other nodes need: Nixus's `networking.public.ipv4` (the endpoint of a VPN server)
and `secrets.files` (files nixus delivers). Every node imports `nixos/facts.nix`, which declares
them for NixOS; here the same options are declared for a partial evaluation of the node's
configuration definitions, in which every other NixOS option is accepted as it is and only
merged when read.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from ..evaluate import lazy, mkOption, types
from ..evaluate.errors import EvalError
from ..evaluate.location import LocatedDict, Loc
from ..evaluate.modules import Evaluation
from ..evaluate.modulevalues import DeferredModule
from ..evaluate.optiontypes import OptionType
from ..evaluate.properties import Definition, force
from ..evaluate.submodule import DeferredModuleType, Submodule
from ..nixlang import NixPath

HERE = Loc(__file__)
FACTS_NIX = Path(__file__).with_name("nixos") / "facts.nix"
SECRETS_DIR = "/var/lib/nixus/secrets"  # where facts.nix says `secrets.files.<name>.file` is


def _address(family: str, options: Any) -> dict:
    """`networking.public.<family>`, and whether it is defined (`hasIpv4`, `hasIpv6`)."""
    def defined() -> bool:
        return options["networking"]["public"][family].is_defined
    return {family: mkOption(type=types.str, description=f"The node's public {family} address."),
            f"hasI{family[1:]}": mkOption(type=types.bool, readOnly=True, default=lazy(defined),
                                          description=f"Whether the node has a public {family} address.")}


def _secret_file(**_: Any) -> dict:
    return {"options": {
        "file": mkOption(type=types.path, description="The secret's file on the deploying machine."),
        "user": mkOption(type=types.nullOr(types.str), default=None, description="The user who owns it."),
        "group": mkOption(type=types.nullOr(types.str), default=None, description="The group who may read it."),
    }}


def _facts_module(options: Any, **_: Any) -> dict:
    """The options of facts.nix, and every other option taken as it is."""
    public = {**_address("ipv4", options), **_address("ipv6", options)}
    return {"_file": HERE, "key": "nixus:nixos-facts", "options": {
        "networking": {"public": public},
        "secrets": {"files": mkOption(type=types.attrsOf(types.submodule(_secret_file)), default={},
                                      description="Files that nixus delivers to the node (Nixus's secrets).")},
    }, "config": {"_module": {"freeformType": types.lazyAttrsOf(types.anything)}}}


class NodeConfiguration(DeferredModule):
    """The merged `configuration` of one node: its definitions, for NixOS, and their facts."""

    def __init__(self, definitions: list[Definition], special_args: dict[str, Any], loc: tuple):
        super().__init__(definitions, special_args)
        self.loc = loc

    def readable(self) -> Evaluation:
        return self.facts

    @cached_property
    def facts(self) -> Evaluation:
        """The partial evaluation of the definitions (with the special arguments they get)."""
        ev = Evaluation([_facts_module, *self.modules()], prefix=self.loc, special_args=self.special_args)
        ev.partial = True
        return ev


class NixosConfiguration(DeferredModuleType):
    """A node's `configuration`: NixOS modules that nixus keeps, for NixOS to merge at build time.

    Nixus declares it as a `submoduleWith` of NixOS's modules, and fleets extend it by declaring
    it again as a `submoduleWith { modules; specialArgs; }`: those modules and arguments join the
    node's NixOS evaluation here too.
    """

    def __init__(self, static_modules: list | None = None, special_args: dict | None = None):
        super().__init__(static_modules)
        self.special_args = dict(special_args or {})

    def merge(self, loc: tuple, defs: list[Definition]) -> NodeConfiguration:
        return NodeConfiguration(super().merge(loc, defs).definitions, self.special_args, loc)

    def empty(self, loc: tuple) -> NodeConfiguration:
        return self.merge(loc, [])

    def type_merge(self, other: OptionType) -> OptionType | None:
        if isinstance(other, Submodule):
            return NixosConfiguration(self.static_modules + other.modules,
                                      {**self.special_args, **other.special_args})
        if isinstance(other, DeferredModuleType):
            return NixosConfiguration(self.static_modules + other.static_modules,
                                      {**self.special_args, **getattr(other, "special_args", {})})
        return None


MISSING: Any = object()


def nixos_option(configuration: NodeConfiguration, path: tuple[str, ...], default: Any = MISSING) -> Any:
    """The value of option `path` of a node's configuration (one of facts.nix's: another is
    only taken as it is defined); `default` where it is not defined, if given."""
    if default is not MISSING:
        option: Any = configuration.facts.options
        for name in path:
            option = option[name]
        if not option.is_defined:
            return default
    value: Any = configuration.facts.config
    for name in path:
        value = value[name]
    return value


def _may_define(configuration: NodeConfiguration, name: str) -> bool:
    """Whether a definition of the configuration may define something under top-level `name`: a
    function or a file may; a set only if it names it (or imports or wraps modules). Most nodes'
    configurations are sets, and need no partial evaluation to say they have no secrets."""
    for d in configuration.definitions:
        value = force(d.value)
        if type(value) not in _SETS or name in value or not _PLAIN_KEYS.isdisjoint(value):
            return True
    return False


_SETS = (dict, LocatedDict)
_PLAIN_KEYS = frozenset({"imports", "require", "config", "options", "_module"})  # not config alone


def secrets_of(configuration: NodeConfiguration) -> dict[str, dict]:
    """The node's `secrets.<name>` that its `secrets.files` (Nixus's secrets) stand for: owned by
    the user (root when none), or readable by the group, at the path facts.nix gives NixOS."""
    if not _may_define(configuration, "secrets"):
        return {}
    files = configuration.facts.config["secrets"]["files"]
    out = {}
    for name in files:
        entry = files[name]
        user, group = entry["user"], entry["group"]
        if user is not None and group is not None:
            option = configuration.facts.options["secrets"]["files"]
            where = [str(f) for f in option.files]
            raise EvalError(f"`{'.'.join((*configuration.loc, 'secrets', 'files', name))}' sets both a user and "
                            f"a group: a secret belongs to one of them (as in Nixus); defined at "
                            f"{', '.join(where)}", (*configuration.loc, "secrets", "files", name), where)
        file = entry["file"]
        out[name] = {"source": file.path if isinstance(file, NixPath) else str(file),
                     "path": f"{SECRETS_DIR}/{name}", "user": user or "root", "group": group or "root",
                     "mode": "0440" if group is not None else "0400"}
    return out
