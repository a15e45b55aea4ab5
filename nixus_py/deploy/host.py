"""What a deploy needs from a host, whatever the way to it: the `Host` protocol.

`Deployment` (run.py), `rollback` and `status` talk only to a `Host`: `SshHost` (ssh_host.py)
over ssh, or `LocalHost` (local_host.py) for the machine nixus runs on; `targets.connect` picks
one. The operations are few and coarse, each one or two round trips, so that a host in
another network costs a deploy little more than one next door.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..evaluate.errors import NixusError

if TYPE_CHECKING:
    from .secrets import Secret
    from .store import PathInfo
    from .switch import Healed, SwitchReport, SwitchRequest
    from .transport import Target


class HostError(NixusError):
    """Something went wrong with one host; the others carry on."""


class HostKeyMismatch(HostError):
    """The host presented a key the fleet does not list for it: nothing is sent to it."""


class Unreachable(HostError):
    """The host could not be reached (network, sshd down, authentication refused)."""


@dataclass
class Result:
    """How a command on the host ended."""

    code: int
    stdout: str
    stderr: str = ""


def command_failed(node: str, command: str, result: Result) -> HostError:
    return HostError(f"{node}: `{command.split()[0]}' failed ({result.code}): {result.stderr.strip()[-500:]}")


def command_overdue(node: str, command: str, timeout: float) -> HostError:
    return HostError(f"{node}: `{command.split()[0]}' did not finish within {timeout:.0f} s")


@dataclass(frozen=True)
class Systems:
    """What a host runs, what it boots next, and the secrets staged there for a new system."""

    current: str | None
    boot: str | None
    staged: str  # the fingerprint of the new system's staged secrets ("" when none are)


@dataclass
class CopyStats:
    paths: int = 0
    bytes: int = 0


class Shell(Protocol):
    """A way to run shell commands on a host and write its files: what `ShellHost` builds a
    `Host` on (an ssh connection, or this machine itself)."""

    target: Target

    async def run(self, command: str, *, input: str | bytes | None = None, timeout: float = 60.0,
                  check: bool = True, root: bool = True) -> Result:
        """Run a shell command (as root unless told otherwise); HostError when it fails, with `check`."""

    async def stream(self, command: str, on_line: Callable[[str], None], *, input: str = "",
                     timeout: float = 60.0) -> Result:
        """Run a command as root and hand each line of its output to `on_line` as it arrives."""

    async def make_dirs(self, path: str, mode: int = 0o700) -> None:
        """Create a directory and its missing parents, as the login user, each with `mode`."""

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write a file atomically as the login user, created with `mode` before any content."""

    async def close(self) -> None:
        """Let go of the host."""


class Host(Protocol):
    """One host as a deploy sees it. Every method raises HostError (Unreachable when the host
    cannot be reached) for what goes wrong on that host."""

    node: str

    async def systems(self, new: str) -> Systems:
        """What the host runs and boots, and the fingerprint of the secrets staged for `new`."""

    async def missing(self, paths: list[str], substitute: bool) -> set[str]:
        """Which of `paths` the host's store lacks (after fetching what it can from its own
        binary caches, with `substitute`)."""

    async def receive(self, paths: list[PathInfo], progress: Callable[[CopyStats], None]) -> CopyStats:
        """Add `paths` (each after those it refers to) to the host's store."""

    async def stage_secrets(self, system: str, secrets: list[Secret]) -> None:
        """Put `system`'s secrets into a directory of its own on the host, for its switcher."""

    async def start_switch(self, request: SwitchRequest, report: SwitchReport) -> None:
        """Start the host's switcher for the request's goal, and follow its states into `report`
        until the new system is active or the switch has ended."""

    async def confirm(self, request: SwitchRequest, report: SwitchReport) -> None:
        """Confirm an activated switch over a NEW connection (proof that the new system still lets
        nixus in), and follow it to its end; without one, leave the host to roll back."""

    async def follow(self, request: SwitchRequest, report: SwitchReport) -> None:
        """Follow the switch into `report` until it has ended (or its time is up)."""

    async def heal(self, request: SwitchRequest) -> Healed:
        """After nixus lost the switch (the host restarted, say): have the host finish or undo a
        commit that did not end, and say what it runs and boots now."""

    async def run(self, command: str, timeout: float = 60.0, check: bool = True) -> Result:
        """Run a shell command as root on the host."""

    async def close(self) -> None:
        """Let go of the host (its connections)."""
