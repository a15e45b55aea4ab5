"""What every `Host` that runs shell commands on the machine shares (`SshHost`, `LocalHost`):
the command that says what it runs, the secrets staged through its files, and the switcher
started, confirmed and followed through its commands."""

from __future__ import annotations

import math
import shlex
import time
from pathlib import Path

from .host import HostError, Result, Shell, Systems, Unreachable
from .secrets import REMOTE_DIR, Secret, stage
from .switch import SWITCHER, Healed, SwitchReport, SwitchRequest

BOOT_WAIT = 120.0  # seconds a host that restarted may take to let nixus in again


class ShellHost:
    """The `Host` methods that need only a `Shell`; the others are its subclasses'."""

    def __init__(self, shell: Shell):
        self.shell = shell
        self.node = shell.target.node
        self._following = shell  # the shell that follows the switch
        self._opened: list[Shell] = []  # for the switch: closed with the host

    async def systems(self, new: str) -> Systems:
        probe = await self.shell.run(  # (`read` rather than `cat`: one process less on the host)
            f'f=; {{ read -r f < {shlex.quote(f"{REMOTE_DIR}/{Path(new).name}/fingerprint")}; }} 2>/dev/null; '
            'printf "%s\\n" "$(readlink -e /run/current-system)" "$(readlink -e /nix/var/nix/profiles/system)" "$f"',
            timeout=30)
        current, boot, staged = (probe.stdout.split("\n") + ["", "", ""])[:3]
        return Systems(current or None, boot or None, staged)

    async def stage_secrets(self, system: str, secrets: list[Secret]) -> None:
        await stage(self.shell, system, secrets)

    async def start_switch(self, request: SwitchRequest, report: SwitchReport) -> None:
        self._following = await self._follow(self.shell, request.start(), request.watch("activated"), report,
                                             request.activation_limit, input=SWITCHER.read_text())

    async def follow(self, request: SwitchRequest, report: SwitchReport) -> None:
        watch = request.watch("final")
        self._following = await self._follow(self._following, f"{watch} {request.limit}", watch, report,
                                             request.limit)

    async def heal(self, request: SwitchRequest) -> Healed:
        shell = self._following
        for _ in range(2):  # the connection that heard the switch last may have died with the host
            try:
                result = await shell.run(request.heal(), input=SWITCHER.read_text(), timeout=request.switch_timeout + 30)
                return Healed.parse(result.stdout)
            except Unreachable:
                again = await self._reconnect(time.monotonic() + BOOT_WAIT)
                if again is None:
                    raise
                self._opened.append(again)
                shell = self._following = again
        raise Unreachable(f"{self.node}: lost the connection again while asking what it runs")

    async def run(self, command: str, timeout: float = 60.0, check: bool = True) -> Result:
        return await self.shell.run(command, timeout=timeout, check=check)

    async def close(self) -> None:
        for shell in (*self._opened, self.shell):
            await shell.close()

    async def _reconnect(self, deadline: float) -> Shell | None:
        """A new way to the host after the last one dropped, tried until `deadline` (monotonic);
        None when there is none."""
        return None

    async def _follow(self, shell: Shell, command: str, again: str, report: SwitchReport, seconds: float,
                      input: str = "") -> Shell:
        """Run `command`, feeding its lines to `report`, until it ends or `seconds` pass. When the
        connection drops (an sshd restart), reconnect and run `again` (given the seconds left)
        instead. Returns the shell that heard the end."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return shell
            try:
                result = await shell.stream(command, report.line, input=input, timeout=left + 5)
            except Unreachable:
                result = None
            if result is not None:
                if result.code != 0 and report.state is None:
                    raise HostError(f"{self.node}: cannot start the switcher ({result.code}): "
                                    f"{result.stderr.strip()[-500:]}")
                return shell
            again_shell = await self._reconnect(deadline)
            if again_shell is None:
                return shell
            self._opened.append(again_shell)
            shell = again_shell
            command, input = f"{again} {math.ceil(deadline - time.monotonic())}", ""
