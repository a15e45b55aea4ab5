"""How nixus talks to a host: one asyncssh connection per host, strict host-key checking,
explicit timeouts, and errors that say which host and why."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from .host import HostError, HostKeyMismatch, Result, Unreachable, command_failed, command_overdue

T = TypeVar("T")
Process = asyncssh.SSHClientProcess[bytes]
CONNECT_TIMEOUT = 10.0
CHUNK = 1 << 20  # bytes per read from a local pipe (and its buffer size)
FEED_TIMEOUT = 3600.0  # seconds for a command to take a stream
AES_GCM = "aes128-gcm@openssh.com,aes256-gcm@openssh.com"  # asyncssh's first choice where we have AES


@dataclass(frozen=True)
class Target:
    """Where and as whom to reach a node, and the host keys it must present."""

    node: str
    host: str
    port: int = 22
    user: str = "root"
    host_keys: tuple[str, ...] = ()
    known_hosts: str | None = None  # a known_hosts file to check a host without host_keys against
    identity_file: str | None = None
    privilege: tuple[str, ...] = ("sudo", "--")
    jump: Target | None = None

    def describe(self) -> str:
        return "this machine, without ssh" if self.local else f"{self.user}@{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        """Whether the node is the machine nixus runs on (`host = "localhost"`): no ssh then."""
        return self.host == "localhost" and self.jump is None

    def as_root(self, command: str) -> str:
        """A shell command line that runs `command` as root on the host (as it is when we log in
        as root, else through the node's privilegeEscalationCommand and a shell of its own)."""
        if self.user == "root":
            return command
        return " ".join(map(shlex.quote, self.privilege)) + " sh -c " + shlex.quote(command)


@dataclass
class Connection:
    """An open ssh connection to one host, reused for all its commands."""

    target: Target
    conn: asyncssh.SSHClientConnection
    tunnel: Connection | None = field(default=None, repr=False)
    sftp: asyncio.Future[asyncssh.SFTPClient] | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, target: Target, timeout: float = CONNECT_TIMEOUT) -> Connection:
        """Connect with strict host-key checking: the node's `hostKeys`, else the known_hosts file
        the fleet names (always given explicitly: ~/.ssh/config could turn checking off)."""
        tunnel = await cls.open(target.jump, timeout) if target.jump else None
        options: dict[str, Any] = {
            "port": target.port, "username": target.user, "connect_timeout": timeout,
            "keepalive_interval": 5, "keepalive_count_max": 3,
        }
        if target.host_keys:
            try:
                options["known_hosts"] = ([asyncssh.import_public_key(k) for k in target.host_keys], [], [])
            except (asyncssh.KeyImportError, ValueError) as e:
                # `hostKeys` are checked keys, but not every point is on its curve: this host
                # fails, not the whole deploy.
                raise HostKeyMismatch(f"{target.node}: nodes.{target.node}.hostKeys holds a key ssh cannot "
                                      f"use ({e}); refusing to talk to it") from None
        else:
            options["known_hosts"] = target.known_hosts  # (targets.py refuses a node with neither)
        if target.identity_file:
            options["client_keys"] = [target.identity_file]
            options["agent_path"] = None
        if tunnel is not None:
            options["tunnel"] = tunnel.conn
        if _has_aes_instructions():
            # asyncssh's chacha20-poly1305 takes several calls into OpenSSL per packet, AES-GCM one:
            # a quarter less CPU here for the few packets of a deploy with nothing to change.
            options["encryption_algs"] = f"^{AES_GCM}"  # OpenSSH's syntax: these first, then the default
        try:
            conn = await asyncio.wait_for(asyncssh.connect(target.host, **options), timeout + 1)
        except asyncssh.HostKeyNotVerifiable as e:
            raise _host_key_refused(target, e.reason, await _presented_key(target, tunnel, timeout)) from None
        except asyncssh.PermissionDenied:
            raise Unreachable(f"{target.node}: {target.describe()} refused our key") from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as e:
            raise Unreachable(f"{target.node}: cannot reach {target.describe()}: {_reason(e)}") from None
        return cls(target, conn, tunnel)

    async def run(self, command: str, *, input: str | bytes | None = None, timeout: float = 60.0,
                  check: bool = True, root: bool = True) -> Result:
        """Run a shell command on the host (as root unless told otherwise)."""
        full = self.target.as_root(command) if root else command
        proc = await self._within(command, self.conn.run(full, input=input, check=False), timeout)
        result = Result(proc.exit_status if proc.exit_status is not None else -1,
                        _text(proc.stdout), _text(proc.stderr))
        if check and result.code != 0:
            raise command_failed(self.target.node, command, result)
        return result

    async def stream(self, command: str, on_line: Callable[[str], None], *, input: str = "",
                     timeout: float = 60.0) -> Result:
        """Run a command as root and hand each line of its output to `on_line` as it arrives."""
        lines: list[str] = []

        async def go() -> Result:
            proc = await self.conn.create_process(self.target.as_root(command))
            proc.stdin.write(input)
            proc.stdin.write_eof()
            async for line in proc.stdout:
                lines.append(line)
                on_line(line.rstrip("\n"))
            done = await proc.wait(check=False)
            if done.exit_status is None and done.exit_signal is None:
                raise Unreachable(f"{self.target.node}: connection lost")
            return Result(done.exit_status if done.exit_status is not None else -1, "".join(lines),
                          _text(done.stderr))

        return await self._within(command, go(), timeout)

    async def _within(self, command: str, work: Awaitable[T], timeout: float) -> T:
        """`work` for `command`, with a timeout, and a lost connection as Unreachable."""
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            raise command_overdue(self.target.node, command, timeout) from None
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost: {_reason(e)}") from None

    async def start(self, command: str, timeout: float = 30.0) -> Process:
        """Start a command as root to talk to it: bytes to its stdin, bytes from its stdout."""
        return await self._within(command, self.conn.create_process(self.target.as_root(command), encoding=None),
                                  timeout)

    async def feed(self, command: str, source: int, timeout: float = FEED_TIMEOUT,
                   started: Process | None = None) -> Result:
        """Run a command with its stdin streamed from `source`, the read end of a local pipe
        (taken over and closed here); or feed `started`, that command already running."""
        _widen(source)
        proc = started or await self.start(command)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CHUNK)
        pipe, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                               open(source, "rb", buffering=0))
        try:
            try:
                while chunk := await reader.read(CHUNK):
                    proc.stdin.write(chunk)
                    await asyncio.wait_for(proc.stdin.drain(), timeout)
                proc.stdin.write_eof()
            except BrokenPipeError:
                pass  # the command stopped reading: how it ended says why
            done = await asyncio.wait_for(proc.wait(check=False), timeout)
        except asyncio.TimeoutError:
            raise HostError(f"{self.target.node}: `{command.split()[0]}' did not take the stream within "
                            f"{timeout:.0f} s") from None
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost while sending: {_reason(e)}") from None
        finally:
            pipe.close()
        if done.exit_status is None and done.exit_signal is None:
            raise Unreachable(f"{self.target.node}: connection lost while sending")
        return Result(done.exit_status if done.exit_status is not None else -1, _text(done.stdout),
                      _text(done.stderr))

    def sftp_session(self) -> asyncio.Future[asyncssh.SFTPClient]:
        """The connection's one sftp session, started on first use (call early to start it
        while other work goes on): each new one costs round trips and a process on the host."""
        if self.sftp is None:
            self.sftp = asyncio.ensure_future(self.conn.start_sftp_client())
            # A session started early may fail with nobody waiting for it yet: its users see the error.
            self.sftp.add_done_callback(lambda f: f.cancelled() or f.exception())
        return self.sftp

    async def make_dirs(self, path: str, mode: int = 0o700) -> None:
        """Create a directory and its missing parents over sftp, each with `mode`."""
        try:
            sftp = await self.sftp_session()
            await sftp.makedirs(path, asyncssh.SFTPAttrs(permissions=mode), exist_ok=True)
        except (OSError, asyncssh.Error) as e:
            self.sftp = None
            raise HostError(f"{self.target.node}: cannot create {path}: {_reason(e)}") from None

    async def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write a file atomically over sftp, created with `mode` before any content arrives."""
        tmp = f"{path}.nixus-tmp"
        try:
            sftp = await self.sftp_session()
            async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=mode)) as f:
                await f.write(data)
            await sftp.chmod(tmp, mode)
            await sftp.posix_rename(tmp, path)
        except (OSError, asyncssh.Error) as e:
            self.sftp = None
            raise HostError(f"{self.target.node}: cannot write {path}: {_reason(e)}") from None

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        except (asyncio.TimeoutError, OSError, asyncssh.Error):
            pass
        if self.tunnel is not None:
            await self.tunnel.close()


@functools.cache
def _has_aes_instructions() -> bool:
    """Whether this machine's CPU lists `aes` (x86 flags, ARM features)."""
    try:
        return re.search(r"\baes\b", Path("/proc/cpuinfo").read_text()) is not None
    except OSError:
        return False


def _widen(pipe: int) -> None:
    """Give a pipe a larger buffer, for fewer and larger reads and writes on both of its ends."""
    try:
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, CHUNK)
    except (AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size: the default
        pass


async def _presented_key(target: Target, tunnel: Connection | None, timeout: float) -> str | None:
    """The fingerprint of the host key a host presents (a key exchange, no authentication: nothing
    of ours reaches a host that is not the one we know); None when it cannot be had."""
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(
            target.host, target.port, tunnel=tunnel.conn if tunnel else (), config=None), timeout)
    except (OSError, asyncio.TimeoutError, asyncssh.Error):
        return None
    return key.get_fingerprint() if key is not None else None


def _host_key_refused(target: Target, reason: str, presented: str | None) -> HostKeyMismatch:
    known = [asyncssh.import_public_key(k).get_fingerprint() for k in target.host_keys]
    said = f"it presented {presented}" if presented else reason
    expected = f"nodes.{target.node}.hostKeys: {', '.join(known)}" if known else \
        f"the keys {target.known_hosts} lists for it"
    return HostKeyMismatch(f"{target.node}: the host key of {target.host}:{target.port} is not one of "
                           f"{expected} ({said}); refusing to talk to it")


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__
