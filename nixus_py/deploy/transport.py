"""How nixus talks to a host: one asyncssh connection per host, strict host-key checking,
explicit timeouts, and errors that say which host and why."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from ..evaluate.errors import NixusError

CONNECT_TIMEOUT = 10.0


class HostError(NixusError):
    """Something went wrong with one host; the others carry on."""


class HostKeyMismatch(HostError):
    """The host presented a key the fleet does not list for it: nothing is sent to it."""


class Unreachable(HostError):
    """The host could not be reached (network, sshd down, authentication refused)."""


@dataclass(frozen=True)
class Target:
    """Where and as whom to reach a node, and the host keys it must present."""

    node: str
    host: str
    port: int = 22
    user: str = "root"
    host_keys: tuple[str, ...] = ()
    identity_file: str | None = None
    privilege: tuple[str, ...] = ("sudo", "--")
    jump: Target | None = None

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def root_prefix(self) -> str:
        """What runs a command as root on the host (nothing when we log in as root)."""
        return "" if self.user == "root" else " ".join(self.privilege) + " "


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str = ""


@dataclass
class Connection:
    """An open ssh connection to one host, reused for all its commands."""

    target: Target
    conn: asyncssh.SSHClientConnection
    tunnel: Connection | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, target: Target, timeout: float = CONNECT_TIMEOUT) -> Connection:
        """Connect with strict host-key checking: the node's `hostKeys`, else ~/.ssh/known_hosts."""
        tunnel = await cls.open(target.jump, timeout) if target.jump else None
        options: dict[str, Any] = {
            "port": target.port, "username": target.user, "connect_timeout": timeout,
            "keepalive_interval": 5, "keepalive_count_max": 3,
        }
        if target.host_keys:
            options["known_hosts"] = ([asyncssh.import_public_key(k) for k in target.host_keys], [], [])
        if target.identity_file:
            options["client_keys"] = [target.identity_file]
            options["agent_path"] = None
        if tunnel is not None:
            options["tunnel"] = tunnel.conn
        try:
            conn = await asyncio.wait_for(asyncssh.connect(target.host, **options), timeout + 1)
        except asyncssh.HostKeyNotVerifiable as e:
            raise HostKeyMismatch(
                f"{target.node}: the host key of {target.host}:{target.port} is not one of "
                f"nodes.{target.node}.hostKeys ({e.reason}); refusing to talk to it") from None
        except asyncssh.PermissionDenied:
            raise Unreachable(f"{target.node}: {target.describe()} refused our key") from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as e:
            raise Unreachable(f"{target.node}: cannot reach {target.describe()}: {_reason(e)}") from None
        return cls(target, conn, tunnel)

    async def run(self, command: str, *, input: str | bytes | None = None, timeout: float = 60.0,
                  check: bool = True, root: bool = True) -> Result:
        """Run a shell command on the host (as root unless told otherwise)."""
        full = (self.target.root_prefix() if root else "") + command
        try:
            proc = await asyncio.wait_for(self.conn.run(full, input=input, check=False), timeout)
        except asyncio.TimeoutError:
            raise HostError(f"{self.target.node}: `{command.split()[0]}' did not finish within {timeout:.0f} s") from None
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost: {_reason(e)}") from None
        result = Result(proc.exit_status if proc.exit_status is not None else -1,
                        _text(proc.stdout), _text(proc.stderr))
        if check and result.code != 0:
            raise HostError(f"{self.target.node}: `{command.split()[0]}' failed ({result.code}): "
                            f"{result.stderr.strip()[-500:]}")
        return result

    async def feed(self, command: str, chunks: Callable[[], Awaitable[bytes]], on_bytes: Callable[[int], None],
                   timeout: float = 3600.0) -> Result:
        """Run a command and stream bytes into its stdin (e.g. `nix-store --import`)."""
        full = self.target.root_prefix() + command
        try:
            proc = await self.conn.create_process(full, encoding=None)
            while chunk := await chunks():
                proc.stdin.write(chunk)
                await asyncio.wait_for(proc.stdin.drain(), timeout)
                on_bytes(len(chunk))
            proc.stdin.write_eof()
            done = await asyncio.wait_for(proc.wait(check=False), timeout)
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost while sending: {_reason(e)}") from None
        return Result(done.exit_status or 0, _text(done.stdout), _text(done.stderr))

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write a file atomically over sftp, created with `mode` before any content arrives."""
        tmp = f"{path}.nixus-tmp"
        try:
            async with self.conn.start_sftp_client() as sftp:
                async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=mode)) as f:
                    await f.write(data)
                await sftp.chmod(tmp, mode)
                await sftp.posix_rename(tmp, path)
        except (OSError, asyncssh.Error) as e:
            raise HostError(f"{self.target.node}: cannot write {path}: {_reason(e)}") from None

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        except (asyncio.TimeoutError, OSError, asyncssh.Error):
            pass
        if self.tunnel is not None:
            await self.tunnel.close()


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


def target_for(name: str, node: Any, identity_file: str | None) -> Target:
    """The ssh target of an evaluated node."""
    if identity_file is not None and not Path(identity_file).exists():
        raise NixusError(f"deploy.identityFile {identity_file} does not exist")
    return Target(node=name, host=node["host"], port=node["port"], user=node["user"],
                  host_keys=tuple(node["hostKeys"]), identity_file=identity_file,
                  privilege=tuple(node["privilegeEscalationCommand"]))
