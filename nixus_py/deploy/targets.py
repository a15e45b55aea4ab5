"""Where each node is and how to reach it, from the evaluated fleet: its ssh target, through
the chain of its `proxyJump` nodes, and the `Host` that reaches it (this machine itself for
`localhost`, else over ssh)."""

from __future__ import annotations

from pathlib import Path

from ..evaluate.errors import NixusError
from ..fleet.evaluate import Fleet
from ..fleet.provenance import Fact
from .host import Host
from .local_host import LocalHost, LocalShell
from .ssh_host import SshHost
from .transport import Target


def target_for(fleet: Fleet, name: str) -> Target:
    """The ssh target of node `name`; bad jump hosts are errors that name where they were set."""
    identity_file = fleet.config["deploy"]["identityFile"]
    if identity_file is not None and not Path(identity_file).exists():
        raise NixusError(f"deploy.identityFile {identity_file} does not exist")
    known_hosts = fleet.config["deploy"]["knownHostsFile"]
    if known_hosts is not None:
        known_hosts = str(Path(known_hosts).expanduser())
        if not Path(known_hosts).is_file():
            raise NixusError(f"deploy.knownHostsFile {known_hosts} is not a file")
    return _target(fleet, name, identity_file, known_hosts, ())


def _target(fleet: Fleet, name: str, identity_file: str | None, known_hosts: str | None,
            reached_from: tuple[str, ...]) -> Target:
    nodes = fleet.config["nodes"]
    node = nodes[name]
    jump = node["proxyJump"]
    fact = Fact(fleet.evaluation.options["nodes"], ("nodes",))
    if jump is not None:
        if jump not in nodes:
            raise fact.error((name, "proxyJump"), f"names `{jump}', which is not a node")
        if jump == name or jump in reached_from:
            chain = " -> ".join((*reached_from, name, jump))
            raise fact.error((name, "proxyJump"), f"makes a circle of jump hosts ({chain})")
    target = Target(node=name, host=node["address"], port=node["port"], user=node["user"],
                    host_keys=tuple(node["hostKeys"]), known_hosts=known_hosts, identity_file=identity_file,
                    privilege=tuple(node["privilegeEscalationCommand"]),
                    jump=_target(fleet, jump, identity_file, known_hosts, (*reached_from, name)) if jump else None)
    if not target.host_keys and known_hosts is None and not target.local:  # (locally, no ssh: no host key)
        raise fact.error((name,), f"has no hostKeys, so nixus cannot tell {name} from an impostor: set "
                                  f"nodes.{name}.hostKeys (what `ssh-keyscan -t ed25519 {node['address']}` prints, "
                                  "checked by hand), or set deploy.knownHostsFile (e.g. \"~/.ssh/known_hosts\") "
                                  "to trust what that file says of the nodes without them")
    return target


async def connect(target: Target) -> Host:
    """The host of a target: this machine for `localhost` (no ssh), else over ssh."""
    return LocalHost(LocalShell(target)) if target.local else await SshHost.open(target)
