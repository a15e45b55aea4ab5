"""SSH access across the fleet (Nixus-compatible): which key may log in where, as whom.

`ssh.access.<node>.keys.<key>.hasAccessTo.<target>.<user> = true` says that the key `<key>`,
which lives on `<node>`, may log in to `<target>` as `<user>`. Every target gets the key in
`users.users.<user>.openssh.authorizedKeys.keys`; every source gets `programs.ssh.knownHosts`
entries for its targets (from their `hostKeys`). The key nixus deploys with
(`deploy.publicKey`) is always authorised for each node's deploy user, so no change made
through nixus can lock nixus out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from nixus_py.evaluate import lazy, mkDefault, mkOption, types
from nixus_py.fleet.formats import ACCOUNT, HOST, host_key, public_key
from nixus_py.fleet.provenance import Fact, per_evaluation
from nixus_py.nixlang import Annotated

def _key_options(**_: Any) -> dict:
    return {"options": {
        "publicKey": mkOption(type=public_key, description="The public half of this key."),
        "hasAccessTo": mkOption(
            type=types.attrsOf(types.attrsOf(types.bool)), default={},
            description="`hasAccessTo.<node>.<user> = true`: this key may log in to `<node>` as `<user>`."),
    }}


def _access_options(**_: Any) -> dict:
    return {"options": {
        "hostKeys": mkOption(type=types.attrsOf(host_key), default={},
                             description="The node's host keys by any name, as Nixus has them (they are "
                                         "also the node's `hostKeys`, which nixus checks when it deploys)."),
        "hostNames": mkOption(type=types.listOf(HOST), default=[],
                              description="Extra names under which the other nodes know this node in "
                                          "their known_hosts (its name and its `host` are always among "
                                          "them, and `localhost` on the node itself)."),
        "keys": mkOption(type=types.attrsOf(types.submodule(_key_options)), default={},
                         description="SSH keys that live on this node, by name."),
    }}


class _Grants:
    """Who may log in where, computed once per fleet evaluation and checked against the nodes."""

    def __init__(self, fleet: Any, options: Any):
        self.nodes = nodes = fleet["nodes"]
        self.access = access = fleet["ssh"]["access"]
        self.fact = Fact(options["ssh"]["access"], ("ssh", "access"))
        self._host_keys: dict[tuple[str, bool], list[tuple[str, dict]]] = {}
        # defaultdicts, as setdefault's `{}` would be built (a LocatedDict, in this file) every time.
        self.authorized: dict[str, dict[str, list[Annotated]]] = defaultdict(
            lambda: defaultdict(list))  # target -> user -> keys
        self.known: dict[str, dict[str, str]] = defaultdict(dict)  # source -> target -> why
        targets: set[str] = set()  # checked already: every admin key names every node
        # A key may live where nixus does not deploy (a laptop listed as a disabled node, or no node
        # at all, as Nixus allows): its grants still apply; only its targets must be nodes.
        for source in access:
            for kname, key in access[source]["keys"].items():
                for target, users in key["hasAccessTo"].items():
                    path = (source, "keys", kname, "hasAccessTo", target)
                    if target not in targets:
                        self._require_node(nodes, path, target)
                        targets.add(target)
                    for user, allowed in users.items():
                        if not ACCOUNT.check(user):  # a passwd entry and a file name on the target
                            raise self.fact.error(path + (user,), "is not a user name: letters, digits, "
                                                                  "`_', `.' and `-' (and a final `$')")
                        if allowed:
                            why = self.fact.why(path + (user,))
                            self.authorized[target][user].append(Annotated(key["publicKey"], why))
                            self.known[source].setdefault(target, why)

    def _require_node(self, nodes: Any, path: tuple, name: str) -> None:
        if name not in nodes:
            raise self.fact.error(path, f"names the node `{name}', but there is no such node "
                                        f"(nodes: {', '.join(sorted(nodes)) or 'none'})")
        if not nodes[name]["enable"]:
            raise self.fact.error(path, f"grants access to the node `{name}', which is disabled "
                                        f"(nodes.{name}.enable = false)")

    def host_keys(self, target: str, on_itself: bool) -> list[tuple[str, dict]]:
        """The known-hosts entries of `target` by name, as Nixus names them (`<target>-<key name>`,
        for keys from `ssh.access`): the same objects for every node that trusts it (a node
        reachable by an admin key is known to every admin host), but the node itself, which also
        knows itself as `localhost`."""
        found = self._host_keys.get((target, on_itself))
        if found is None:
            access = self.access[target] if target in self.access else None
            names = [target, *(access["hostNames"] if access else [])] + ["localhost"] * on_itself
            host = self.nodes[target]["address"]
            names += [host] if host not in names else []  # the address nixus reaches it at
            named = {key: f"{target}-{kname}" for kname, key in (access["hostKeys"].items() if access else [])}
            found = self._host_keys[target, on_itself] = [
                (named.get(host_key) or (target if i == 0 else f"{target}-{i + 1}"),
                 {"hostNames": names, "publicKey": host_key})
                for i, host_key in enumerate(dict.fromkeys(self.nodes[target]["hostKeys"]))]
        return found


grants = per_evaluation(_Grants)


def node_configuration(name: str, node: Any, fleet: Any, options: Any) -> dict:
    """The NixOS settings for one node: its authorised keys and the host keys it trusts."""
    g = grants(fleet, options)
    users = {user: list(keys) for user, keys in g.authorized.get(name, {}).items()}
    deploy_key = fleet["deploy"]["publicKey"]
    if deploy_key is not None and deploy_key not in [k.value for k in users.get(node["user"], [])]:
        users.setdefault(node["user"], []).append(Annotated(deploy_key, "deploy.publicKey: nixus must always get in"))
    known = {key: Annotated(entry, f"nodes.{target}.hostKeys, for {why}")
             for target, why in sorted(g.known.get(name, {}).items())
             for key, entry in g.host_keys(target, target == name)}
    # nixus deploys over ssh: sshd runs unless the node's configuration says otherwise.
    config: dict[str, Any] = {"services": {"openssh": {"enable": Annotated(mkDefault(True), "nixus deploys over ssh")}}}
    if users:
        config["users"] = {"users": {u: {"openssh": {"authorizedKeys": {"keys": k}}} for u, k in users.items()}}
    if known:
        config["programs"] = {"ssh": {"knownHosts": known}}
    return config


def module(config: Any, options: Any, **_: Any) -> dict:
    def per_node(name: str, config: Any, fleet: Any, **_: Any) -> dict:
        return {"configuration": lazy(lambda: node_configuration(name, config, fleet, options)),
                "hostKeys": lazy(lambda: list(fleet["ssh"]["access"][name]["hostKeys"].values())
                                 if name in fleet["ssh"]["access"] else [])}

    return {
        "options": {
            "ssh": {"access": mkOption(
                type=types.attrsOf(types.submodule(_access_options)), default={},
                description="SSH access: `ssh.access.<node>.keys.<key>.hasAccessTo.<target>.<user>`.")},
            "deploy": {
                "publicKey": mkOption(
                    type=types.nullOr(public_key), default=None,
                    description="The public key nixus deploys with; always authorised for each node's `user`."),
            },
        },
        "config": {
            "defaults": per_node,
            "relations": lazy(lambda: [
                {"from": source, "to": target, "kind": "ssh", "why": why}
                for source, targets in sorted(grants(config, options).known.items())
                for target, why in sorted(targets.items())]),
        },
    }
