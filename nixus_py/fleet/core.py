"""The fleet's own options (Nixus-compatible names): `nodes`, `defaults`, `deploy`."""

from __future__ import annotations

from typing import Any

from ..evaluate import lazy, mkIf, mkMerge, mkOption, mkOptionDefault, mkOverride, types
from ..evaluate.location import Loc
from ..evaluate.modulevalues import DeferredModule
from ..evaluate.optiontypes import OptionType
from ..evaluate.properties import Definition
from ..evaluate.submodule import Submodule
from .formats import ABSOLUTE_PATH, ACCOUNT, HOST, KEY_NAME, LOGIN, host_key, split_login
from .lock import lock_entry
from .nixos_facts import NixosConfiguration, secrets_of

HERE = Loc(__file__)

def _secret_options(name: str, **_: Any) -> dict:
    return {"options": {
        "source": mkOption(type=types.nullOr(types.str), default=None,
                           description="Local file with the secret's content (never copied to the store)."),
        "generatedKey": mkOption(type=types.nullOr(types.strMatching(KEY_NAME.pattern)), default=None,
                                 description="Name of a key pair in `generatedKeys` whose private half "
                                             "is the content (instead of `source`)."),
        "path": mkOption(type=ABSOLUTE_PATH, default=f"/var/lib/nixus/secrets/{name}",
                         description="Where the file goes on the node."),
        "user": mkOption(type=ACCOUNT, default="root", description="Owner of the file."),
        "group": mkOption(type=ACCOUNT, default="root", description="Group of the file."),
        "mode": mkOption(type=types.strMatching("0?[0-7]{3}"), default="0400",
                         description="Permissions of the file."),
    }}


def _deploy_from_options(**_: Any) -> dict:
    return {"options": {
        "host": mkOption(type=LOGIN, description="How to reach the node from that machine."),
        "hasFastConnection": mkOption(type=types.bool, default=False,
                                      description="Whether the connection from there is fast (copy "
                                                  "everything rather than substitute on the node)."),
    }}


# Options of Nixus's deploy module that nixus has no use for: a fleet that sets one is told why
# and what to do instead, rather than having it ignored.
NIXUS_ONLY = {
    "preparationPhases": "nixus prepares a host itself (copy, secrets, switch); run other steps "
                         "before `nixus deploy`",
    "preparationScript": "nixus prepares a host itself (copy, secrets, switch); run other steps "
                         "before `nixus deploy`",
    "postDeployScript": "act on `nixus deploy --json`'s per-host outcomes instead",
    "closurePaths": "put what the node needs into its configuration (environment.systemPackages, "
                    "system.extraDependencies), so that it is part of the node's closure",
    "deployScript": "nixus deploys itself: run `nixus deploy --on <node>`",
}


class NodeDefaults(Submodule):
    """`defaults`'s type. As in Nixus, a submodule of the node options, so that a fleet adds
    options to every node by declaring `defaults` again with a submodule type; its value is not
    evaluated on its own but applied to every node, as a deferred module."""

    def merge(self, loc: tuple, defs: list[Definition]) -> DeferredModule:
        return DeferredModule(list(defs))

    def empty(self, loc: tuple) -> DeferredModule:
        return DeferredModule([])

    def subst_sub_modules(self, modules: list) -> OptionType:
        return NodeDefaults(modules)

    def type_merge(self, other: OptionType) -> OptionType | None:
        merged = super().type_merge(other)
        return merged if merged is None or isinstance(merged, NodeDefaults) else NodeDefaults(merged.modules)


# The options of one node (one machine) of the fleet: one constant module, so that the evaluations
# of all nodes share its declarations (merged once); `fleet_module` makes the name the default host.
NODE_OPTIONS = {
    "_file": HERE,
    "key": "nixus:node-options",
    "options": {
        "enable": mkOption(type=types.bool, default=True,
                           description="Whether this node is part of deployments."),
        "host": mkOption(type=LOGIN, defaultText="the node's name",
                         description="Address (hostname or IP) that nixus uses to reach the node, "
                                     "perhaps after the user to log in as (`deploy@10.0.0.1`, as in Nixus)."),
        "address": mkOption(type=HOST, readOnly=True, defaultText="`host` without its user",
                            description="The address in `host`: what ssh connects to, and the name "
                                        "other nodes know this one by."),
        "port": mkOption(type=types.port, default=22, description="SSH port of the node."),
        "user": mkOption(type=ACCOUNT, defaultText="the user in `host`, else root",
                         description="User that nixus logs in as."),
        "hostKeys": mkOption(type=types.listOf(host_key), default=[],
                             description="The node's public SSH host keys, for strict host-key checking "
                                         "(`ssh-keyscan` lines are taken too)."),
        "tags": mkOption(type=types.listOf(types.str), default=[],
                         description="Tags for selecting nodes on the command line (`--on @tag`)."),
        "system": mkOption(type=types.str, default="x86_64-linux",
                           description="The node's Nix system type."),
        "nixpkgs": mkOption(type=types.nullOr(types.either(types.path, types.nixValue)), default=None,
                            description="Where the node's nixpkgs comes from (a path or Nix value); "
                                        "null means the fleet default."),
        "configuration": mkOption(type=NixosConfiguration(), default={},
                                  description="The NixOS modules of this machine. nixus keeps each "
                                              "definition with its origin; NixOS merges them at build time."),
        "successTimeout": mkOption(type=types.ints.positive, default=20,
                                   description="Seconds within which nixus must confirm a switched "
                                               "node over a new connection before it rolls back."),
        "switchTimeout": mkOption(type=types.ints.positive, default=60,
                                  description="Seconds that activating the new configuration may take."),
        "privilegeEscalationCommand": mkOption(type=types.listOf(types.str), default=["sudo", "--"],
                                               description="Command prefix to gain root when `user` "
                                                           "is not root."),
        "buildOn": mkOption(type=types.enum(["local", "target"]), default="local",
                            description="Where the node's system is built."),
        "substituteOnTarget": mkOption(type=types.bool, default=False,
                                       description="Let the node fetch what it lacks of its system "
                                                   "from its own binary caches (its nix.conf "
                                                   "substituters) before nixus sends the rest."),
        "hasFastConnection": mkOption(type=types.nullOr(types.bool), default=None,
                                      description="Nixus's name for the opposite of `substituteOnTarget`: "
                                                  "when set, it decides that option's default."),
        "deployFrom": mkOption(type=types.attrsOf(types.submodule(_deploy_from_options)), default={},
                               description="How to reach the node when deploying from the machine "
                                           "`deployHost` names (as in Nixus): its `host` and "
                                           "`hasFastConnection` from there."),
        **{name: mkOption(type=types.nullOr(types.raw), default=None, internal=True,
                          description=f"Nixus's {name}, which nixus does not run: {why}")
           for name, why in NIXUS_ONLY.items()},
        "proxyJump": mkOption(type=types.nullOr(types.str), default=None,
                              description="Another node to reach this one through, as ssh's "
                                          "ProxyJump: nixus logs in to that node (with its host, "
                                          "port, user and hostKeys, and its own proxyJump) and "
                                          "connects on from there. It may be a node with "
                                          "`enable = false` that only serves as a jump host."),
        "secrets": mkOption(type=types.attrsOf(types.submodule(_secret_options)), default={},
                            description="Files nixus delivers to the node outside the Nix store "
                                        "(kept per generation, restored on rollback)."),
        "deployAfter": mkOption(type=types.listOf(types.str), default=[],
                                description="Nodes that must be deployed before this one."),
        "ignoreFailingSystemdUnits": mkOption(type=types.bool, default=False,
                                              description="Treat failing systemd units after activation "
                                                          "as success."),
    },
}


def _relation_options(**_: Any) -> dict:
    return {"options": {
        "from": mkOption(type=types.str, description="The node the relation starts at."),
        "to": mkOption(type=types.str, description="The node the relation points to."),
        "kind": mkOption(type=types.str, description="What the relation is, e.g. `ssh`, `vpn`, `dns`."),
        "orders": mkOption(type=types.bool, default=False,
                           description="Whether `from` must be deployed before `to`."),
        "why": mkOption(type=types.str, default="", description="The fleet fact behind the relation."),
    }}


def fleet_module(config: Any, nodes: Any, options: Any, **_: Any) -> dict:
    """The fleet core: `nodes` (one submodule each, with `defaults` imported) and fleet settings."""
    def per_node(name: str, **args: Any) -> dict:
        """As in Nixus, the modules of `defaults`'s type (the node options, and the options a fleet
        adds by declaring `defaults` again) and `defaults`'s definitions; the node's name as its
        default `host`; its address, and its default user, from `host`; and what Nixus's deploy
        options mean for it."""
        node = args["config"]

        def login() -> tuple[str | None, str]:
            return split_login(node["host"])

        def deploy_from(what: str) -> Any:
            """What `deployFrom.<deployHost>` says (as in Nixus: above a plain definition, below
            mkForce); deploying from the node itself reaches it as root@localhost, fast."""
            def applies() -> bool:
                here = config.deployHost
                return here is not None and (here == name or here in node["deployFrom"])

            def value() -> Any:
                entry = node["deployFrom"].get(config.deployHost)
                return entry[what] if entry is not None else {"host": "root@localhost", "hasFastConnection": True}[what]
            return mkIf(lazy(applies), mkOverride(75, lazy(value)))

        def fast() -> bool | None:
            return node["hasFastConnection"]

        imports = [*options["defaults"].type.modules, config.defaults]
        return {"_file": HERE, "imports": imports, "config": {
            "host": mkMerge([mkOptionDefault(name), deploy_from("host")]),
            "address": lazy(lambda: login()[1]),
            "user": mkOptionDefault(lazy(lambda: login()[0] or "root")),
            "hasFastConnection": deploy_from("hasFastConnection"),
            "secrets": lazy(lambda: secrets_of(node["configuration"])),
            # Above substituteOnTarget's default, below any definition of it.
            "substituteOnTarget": mkIf(lazy(lambda: fast() is not None), mkOverride(1400, lazy(lambda: not fast()))),
        }}

    node_type = Submodule([NODE_OPTIONS, per_node], special_args={"nodes": nodes, "fleet": config})
    def locked_keys() -> dict:
        known = lock_entry(config["lock"], "keys")
        return {name: known[name] for name in sorted(config["generatedKeys"]) if name in known}

    return {
        "_file": HERE,
        "key": "nixus:fleet-core",
        "config": {"lockFile": {"keys": lazy(locked_keys)}},
        "options": {
            "nodes": mkOption(type=types.attrsOf(node_type), default={},
                              description="The machines of the fleet, by name."),
            "defaults": mkOption(type=NodeDefaults([NODE_OPTIONS]), default={},
                                 description="A module applied to every node (as in Nixus). Declaring "
                                             "`defaults` again with a submodule type adds options "
                                             "to every node."),
            "relations": mkOption(
                type=types.listOf(types.submodule(_relation_options)), default=[],
                description="Relations between nodes declared by modules (ssh grants, VPN peerings, DNS "
                            "transfers), shown by `nixus graph`; those with `orders` also order deploys."),
            "lock": mkOption(type=types.raw, default={}, internal=True,
                             description="The content of fleet.lock.json as nixus read it."),
            "lockFile": mkOption(type=types.attrsOf(types.raw), default={}, internal=True,
                                 description="What fleet.lock.json should contain; each module defines "
                                             "its own section."),
            "generatedKeys": mkOption(
                type=types.attrsOf(types.enum(["wireguard"])), default={},
                description="Key pairs nixus creates and keeps, by name: the private half in the state "
                            "directory, the public half in fleet.lock.json (`lock.keys.<name>`)."),
            "deploy": {
                "parallel": mkOption(type=types.ints.positive, default=10,
                                     description="How many hosts nixus deploys at once."),
                "buildJobs": mkOption(
                    type=types.nullOr(types.ints.positive), default=None,
                    description="How many derivations Nix builds at once on this machine (Nix's "
                                "`--max-jobs`); null: one per CPU core. More jobs than Nix has build "
                                "users only wait."),
                "identityFile": mkOption(
                    type=types.nullOr(types.str), default=None,
                    description="The private key file nixus deploys with (read only by ssh; never copied "
                                "into the store or onto a command line); the ssh agent when null."),
                "knownHostsFile": mkOption(
                    type=types.nullOr(types.str), default=None,
                    description="A known_hosts file (e.g. `~/.ssh/known_hosts`) to check the nodes that "
                                "have no `hostKeys` against; without it nixus refuses such a node."),
            },
            "deployHost": mkOption(type=types.nullOr(types.str), default=None,
                                   description="The machine nixus deploys from, as in Nixus: a node's "
                                               "`deployFrom.<deployHost>` then says how to reach it."),
        },
    }
