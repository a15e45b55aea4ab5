"""How nixus talks to a host: one asyncssh connection per host, strict host-key checking,
explicit timeouts, and errors that say which host and why.

Large streams (a closure of many megabytes) are the exception: asyncssh encrypts in Python, at
about 60 MB/s on a small machine where OpenSSH's `ssh` does well over 100 MB/s, so they go over
a second connection made by `ssh` (when it is installed), checked against the same host keys.
"""

from __future__ import annotations

import asyncio
import ctypes.util
import fcntl
import functools
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..evaluate.errors import NixusError


@contextmanager
def _libraries_from_linker_cache() -> Iterator[None]:
    """Let ctypes look up shared libraries in the dynamic linker's cache only. asyncssh looks for
    liboqs (post-quantum key exchange) when it is imported; where liboqs is not installed,
    find_library then runs gcc and ld for each of two names: 15-30 ms of every deploy's start.
    A liboqs installed as a system library is in that cache."""
    find, in_cache = ctypes.util.find_library, getattr(ctypes.util, "_findSoname_ldconfig", None)
    if in_cache is None or not sys.platform.startswith("linux"):
        yield
        return
    ctypes.util.find_library = in_cache
    try:
        yield
    finally:
        ctypes.util.find_library = find


with _libraries_from_linker_cache():
    import asyncssh

T = TypeVar("T")
Process = asyncssh.SSHClientProcess[bytes]
CONNECT_TIMEOUT = 10.0
# Streams of at least this many bytes go over OpenSSH. For one host on a 2-core machine the second
# connection's setup (a process, a key exchange, a login: 0.1-0.3 s) pays off from about 64 MB;
# but the channels of all hosts share this one Python thread, while each `ssh` is a process.
OPENSSH_BYTES = 32 << 20
CHUNK = 1 << 20  # bytes per read from a local pipe (and its buffer size)
FEED_TIMEOUT = 3600.0  # seconds for a command to take a stream
# OpenSSH's ciphers with AES-GCM first: the fastest where both ends have AES instructions, while
# OpenSSH's default first choice, chacha20-poly1305, is the fastest where they do not.
AES_GCM = "aes128-gcm@openssh.com,aes256-gcm@openssh.com"
AES_FIRST = f"{AES_GCM},chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"


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
    known_hosts: str | None = None  # a known_hosts file to check a host without host_keys against
    identity_file: str | None = None
    privilege: tuple[str, ...] = ("sudo", "--")
    jump: Target | None = None

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def as_root(self, command: str) -> str:
        """A shell command line that runs `command` as root on the host (as it is when we log in
        as root, else through the node's privilegeEscalationCommand and a shell of its own)."""
        if self.user == "root":
            return command
        return " ".join(map(shlex.quote, self.privilege)) + " sh -c " + shlex.quote(command)


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
    sftp: asyncio.Future[asyncssh.SFTPClient] | None = field(default=None, repr=False)
    ciphers: asyncio.Future[list[str]] | None = field(default=None, repr=False)

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
            options["known_hosts"] = ([asyncssh.import_public_key(k) for k in target.host_keys], [], [])
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
            raise _host_key_refused(target, e.reason) from None
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
            raise HostError(f"{self.target.node}: `{command.split()[0]}' failed ({result.code}): "
                            f"{result.stderr.strip()[-500:]}")
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
            raise HostError(f"{self.target.node}: `{command.split()[0]}' did not finish within {timeout:.0f} s") from None
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost: {_reason(e)}") from None

    async def start(self, command: str, timeout: float = 30.0) -> Process:
        """Start a command as root to talk to it: bytes to its stdin, bytes from its stdout."""
        return await self._within(command, self.conn.create_process(self.target.as_root(command), encoding=None),
                                  timeout)

    def prefers_openssh(self, size: int) -> bool:
        """Whether a stream of `size` bytes should take OpenSSH's client (see OPENSSH_BYTES)."""
        return size >= OPENSSH_BYTES and self.target.jump is None and shutil.which("ssh") is not None

    async def feed(self, command: str, source: int, timeout: float = FEED_TIMEOUT,
                   started: Process | None = None) -> Result:
        """Run a command with its stdin streamed from `source`, the read end of a local pipe
        (taken over and closed here); or feed `started`, that command already running."""
        _widen(source)
        try:
            return await self._feed_channel(started or await self.start(command), source, timeout)
        except asyncio.TimeoutError:
            raise _not_taken(self.target, command, timeout) from None

    def openssh_stream(self, command: str) -> OpenSSHStream:
        """Start a command on the host, over a connection of its own made by OpenSSH's `ssh`, that
        reads what is written to the stream's pipe: it connects and logs in meanwhile."""
        read, write = os.pipe()
        _widen(read)
        return OpenSSHStream(self.target, command, write,
                             asyncio.ensure_future(self._feed_openssh(self.target.as_root(command), read)))

    async def _feed_channel(self, proc: Process, source: int, timeout: float) -> Result:
        """`feed` over this connection: what comes out of the pipe is written to a channel."""
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
        except (OSError, asyncssh.Error) as e:
            raise Unreachable(f"{self.target.node}: connection lost while sending: {_reason(e)}") from None
        finally:
            pipe.close()
        if done.exit_status is None and done.exit_signal is None:
            raise Unreachable(f"{self.target.node}: connection lost while sending")
        return Result(done.exit_status if done.exit_status is not None else -1, _text(done.stdout),
                      _text(done.stderr))

    async def _feed_openssh(self, command: str, source: int) -> Result:
        """A command fed from `source` over a connection of its own made by OpenSSH's `ssh`, which
        accepts only the node's host keys (as asyncssh does), logs in with the same identity and
        reads the pipe itself."""
        with tempfile.TemporaryDirectory(prefix="nixus-ssh-") as tmp:
            try:
                # (Shielded: the answer is shared, and this stream may be abandoned.)
                options = self._openssh_options(Path(tmp)) + await asyncio.shield(self.openssh_ciphers())
                proc = await asyncio.create_subprocess_exec(
                    "ssh", *options, "--", self.target.host, command, stdin=source, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
            finally:
                os.close(source)
            try:
                out, err = await proc.communicate()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        if proc.returncode == 255:  # ssh's own failure: connecting, the host key, the login
            reason = (_text(err).strip().splitlines() or ["exit 255"])[-1]
            if "Host key verification failed" in reason:
                raise _host_key_refused(self.target, f"ssh: {reason}")
            raise Unreachable(f"{self.target.node}: ssh to {self.target.describe()} failed: {reason}")
        return Result(proc.returncode or 0, _text(out), _text(err))

    def _openssh_options(self, directory: Path) -> list[str]:
        """ssh's options for this target (its host goes after a `--`): strict host-key checking
        against the node's `hostKeys` (else ~/.ssh/known_hosts), no prompts, no forwarding."""
        t = self.target
        options = ["-T", "-x", "-a", "-p", str(t.port), "-l", t.user, "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=yes", "-o", "ClearAllForwardings=yes",
                   "-o", f"ConnectTimeout={CONNECT_TIMEOUT:.0f}", "-o", "ServerAliveInterval=5",
                   "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
        if t.host_keys:
            # Under an alias, so that only these keys count, whatever address or port the host has.
            alias = "nixus-" + re.sub(r"[^A-Za-z0-9._-]", "_", t.node)
            known = directory / "known_hosts"
            known.write_text("".join(f"{alias} {' '.join(k.split()[:2])}\n" for k in t.host_keys))
            options += ["-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                        "-o", f"HostKeyAlias={alias}"]
        else:
            options += ["-o", f"UserKnownHostsFile={t.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if t.identity_file:
            options += ["-i", t.identity_file, "-o", "IdentitiesOnly=yes"]
        return options

    def openssh_ciphers(self) -> asyncio.Future[list[str]]:
        """OpenSSH's cipher options for this host, asked once (call early to ask while other
        work goes on)."""
        if self.ciphers is None:
            self.ciphers = asyncio.ensure_future(self._cipher_options())
        return self.ciphers

    async def _cipher_options(self) -> list[str]:
        """AES-GCM first for OpenSSH when this machine and the host both have AES instructions."""
        if not _has_aes_instructions():
            return []
        try:
            host = await self.run("grep -qw aes /proc/cpuinfo", timeout=30, check=False, root=False)
        except HostError:
            return []
        return ["-o", f"Ciphers={AES_FIRST}"] if host.code == 0 else []

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


@dataclass
class OpenSSHStream:
    """A command on the host reading what is written to `fd` (Connection.openssh_stream)."""

    target: Target
    command: str
    fd: int  # the write end of its input; closed by whoever writes the stream
    done: asyncio.Future[Result]

    async def result(self, timeout: float = FEED_TIMEOUT) -> Result:
        """How the command ended, once the stream is written."""
        try:
            return await asyncio.wait_for(self.done, timeout)
        except asyncio.TimeoutError:
            raise _not_taken(self.target, self.command, timeout) from None

    async def abandon(self) -> None:
        """Not needed after all: stop `ssh` wherever it is, and close the input unwritten."""
        self.done.cancel()
        try:
            await self.done
        except (asyncio.CancelledError, HostError, OSError):
            pass
        os.close(self.fd)


def _not_taken(target: Target, command: str, timeout: float) -> HostError:
    return HostError(f"{target.node}: `{command.split()[0]}' did not take the stream within {timeout:.0f} s")


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


def _host_key_refused(target: Target, reason: str) -> HostKeyMismatch:
    return HostKeyMismatch(f"{target.node}: the host key of {target.host}:{target.port} is not one of "
                           f"nodes.{target.node}.hostKeys ({reason}); refusing to talk to it")


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__
