"""The machine nixus runs on as a `Host` (`host = "localhost"`, as colmena's local deployment):
commands run here, as root (through the node's privilegeEscalationCommand when nixus itself
does not run as root); the system is already in this store; the switch is confirmed at once,
as there is no connection whose loss could lock nixus out."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .host import CopyStats, HostError, Result, command_failed, command_overdue
from .shell_host import ShellHost
from .store import PathInfo
from .switch import SwitchReport, SwitchRequest
from .transport import Target


class LocalShell:
    """This machine as a `Shell`: the login user is the one nixus runs as, at home in its home."""

    def __init__(self, target: Target, user: str | None = None):
        user = user or ("root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
        self.target = replace(target, user=user)  # as_root() escalates unless that is root
        self.home = Path.home()

    async def run(self, command: str, *, input: str | bytes | None = None, timeout: float = 60.0,
                  check: bool = True, root: bool = True) -> Result:
        data = input.encode() if isinstance(input, str) else input
        proc = await self._start(self.target.as_root(command) if root else command)
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout)
        except asyncio.TimeoutError:
            await _kill(proc)
            raise command_overdue(self.target.node, command, timeout) from None
        result = Result(proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace"),
                        err.decode(errors="replace"))
        if check and result.code != 0:
            raise command_failed(self.target.node, command, result)
        return result

    async def stream(self, command: str, on_line: Callable[[str], None], *, input: str = "",
                     timeout: float = 60.0) -> Result:
        proc = await self._start(self.target.as_root(command))
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(input.encode())
        proc.stdin.close()
        lines: list[str] = []

        async def go() -> Result:
            assert proc.stdout and proc.stderr
            async for raw in proc.stdout:
                line = raw.decode(errors="replace")
                lines.append(line)
                on_line(line.rstrip("\n"))
            err = await proc.stderr.read()
            return Result(await proc.wait(), "".join(lines), err.decode(errors="replace"))

        try:
            return await asyncio.wait_for(go(), timeout)
        except asyncio.TimeoutError:
            await _kill(proc)
            raise command_overdue(self.target.node, command, timeout) from None

    async def make_dirs(self, path: str, mode: int = 0o700) -> None:
        try:
            missing = [p for p in (self.home / path, *(self.home / path).parents) if not p.exists()]
            for directory in reversed(missing):
                directory.mkdir(mode=mode)
                directory.chmod(mode)  # (mkdir's mode passes through the umask)
        except OSError as e:
            raise HostError(f"{self.target.node}: cannot create {path}: {e.strerror}") from None

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        file = self.home / path
        tmp = file.with_name(file.name + ".nixus-tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                os.fchmod(fd, mode)
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, file)
        except OSError as e:
            raise HostError(f"{self.target.node}: cannot write {path}: {e.strerror}") from None

    async def close(self) -> None:
        pass

    async def _start(self, command: str) -> asyncio.subprocess.Process:
        """A command in a session of its own, as over ssh: Ctrl-C here does not reach it, and a
        timeout ends all it started (the switcher's own run is detached from it)."""
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec("sh", "-c", command, stdin=pipe, stdout=pipe, stderr=pipe,
                                                    cwd=self.home, start_new_session=True)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """End a command and everything in its session (which holds its output pipes open)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await proc.wait()


class LocalHost(ShellHost):
    """This machine, deployed without ssh."""

    async def missing(self, paths: list[str], substitute: bool) -> set[str]:
        """Which of `paths` this store lacks: none, normally, as the system was built here."""
        if not paths:
            return set()
        proc = await asyncio.create_subprocess_exec(
            "nix-store", "--check-validity", "--print-invalid", *paths, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise HostError(f"{self.node}: cannot check this machine's store: {err.decode().strip()[-500:]}")
        return set(out.decode().split())

    async def receive(self, paths: list[PathInfo], progress: Callable[[CopyStats], None]) -> CopyStats:
        raise HostError(f"{self.node}: {len(paths)} paths of the system are not in this machine's store, "
                        f"e.g. {paths[0].path}")

    async def confirm(self, request: SwitchRequest, report: SwitchReport) -> None:
        self._following = await self._follow(self.shell, request.confirm(), request.watch("final"), report,
                                             request.limit)
