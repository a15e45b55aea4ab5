"""Nix's serve protocol (serve-protocol.hh), the client side: what a host's
`nix-store --serve --write`, the receiving end of `nix copy --to ssh://`, is told.

One query says which paths the host has (optionally letting it substitute the others from its
binary caches first); then every missing path goes in one stream, each stored as its bytes
arrive. Unlike `nix copy`, which waits for the host to acknowledge every path before sending
the next, nixus does not wait per path. The stream is written here from the store's files
(each path as a NAR, preceded by what the database knows of it), in a thread of its own.
"""

from __future__ import annotations

import asyncio
import os
import stat
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from .host import CopyStats, HostError
from .store import PathInfo
from .transport import Connection, Process

PROGRESS_EVERY = 0.2  # seconds between progress reports while sending
QUERY_TIMEOUT = 120  # seconds for the host to say which paths it has
SUBSTITUTE_TIMEOUT = 3600  # ... when it first substitutes what it can
SERVE = "nix-store --serve --write"
# Its protocol: our greeting and the host's answer, version 2.5 (the first with cmdAddToStoreNar),
# the query of valid paths and the command that adds one path from its NAR.
SERVE_MAGIC = 0x390C9DEB
SERVE_ANSWER = 0x5452EECB
SERVE_VERSION = 0x205
QUERY_VALID_PATHS = 1
ADD_TO_STORE_NAR = 9
FILE_CHUNK = 1 << 20  # file contents larger than this go to the pipe in pieces of this size


class Serve:
    """A `nix-store --serve --write` on the host, past its greeting."""

    def __init__(self, conn: Connection, proc: Process):
        self.conn, self.proc = conn, proc

    @classmethod
    async def open(cls, conn: Connection) -> Serve:
        serve = cls(conn, await conn.start(SERVE))
        serve.proc.stdin.write(_int(SERVE_MAGIC))
        if await serve._int() != SERVE_ANSWER:
            raise HostError(f"{conn.target.node}: `{SERVE}' does not speak Nix's serve protocol")
        await serve._int()  # its version: what we use is in every version since 2.5
        serve.proc.stdin.write(_int(SERVE_VERSION))
        return serve

    async def valid(self, paths: list[str], substitute: bool) -> set[str]:
        """Which of `paths` the host has, after substituting what it can when asked to."""
        self.proc.stdin.write(_int(QUERY_VALID_PATHS) + _int(0) + _int(int(substitute)) + _int(len(paths))
                              + b"".join(map(_str, paths)))
        seconds = SUBSTITUTE_TIMEOUT if substitute else QUERY_TIMEOUT
        try:
            return await asyncio.wait_for(self._strings(), seconds)
        except asyncio.TimeoutError:
            raise HostError(f"{self.conn.target.node}: the host did not say which paths it has within "
                            f"{seconds} s") from None

    async def add(self, infos: list[PathInfo], progress: Callable[[CopyStats], None]) -> CopyStats:
        """Stream the paths into the host's store (each after those it refers to), which ends
        the session."""
        stats = CopyStats()
        reported = time.monotonic()

        def sent(n: int) -> None:
            nonlocal reported
            stats.bytes += n
            if time.monotonic() - reported >= PROGRESS_EVERY:
                reported = time.monotonic()
                progress(stats)

        loop = asyncio.get_running_loop()
        read, write = os.pipe()
        receiving = self.conn.feed(SERVE, read, started=self.proc)
        writing = _in_own_thread(_write_stream, infos, write, lambda n: loop.call_soon_threadsafe(sent, n))
        # Whichever side fails first ends the other: the host sees the stream end, the writer a
        # closed pipe (BrokenPipeError, not an error of its own).
        result, written = await asyncio.gather(receiving, writing, return_exceptions=True)
        node = self.conn.target.node
        if isinstance(written, BaseException) and not isinstance(written, BrokenPipeError):
            raise HostError(f"{node}: cannot send the store paths: {written}") from written
        if isinstance(result, BaseException):
            raise result
        if result.code != 0 or written is not None:
            raise HostError(f"{node}: {SERVE} failed ({result.code}): {result.stderr.strip()[-500:]}")
        stats.paths = len(infos)
        progress(stats)
        return stats

    async def close(self) -> None:
        self.proc.stdin.write_eof()
        await self.proc.wait(check=False)

    async def _int(self) -> int:
        return struct.unpack("<Q", await self._read(8))[0]

    async def _strings(self) -> set[str]:
        return {(await self._str()) for _ in range(await self._int())}

    async def _str(self) -> str:
        n = await self._int()
        return (await self._read(n + (-n % 8)))[:n].decode()

    async def _read(self, n: int) -> bytes:
        try:
            return await self.proc.stdout.readexactly(n)
        except asyncio.IncompleteReadError:
            done = await self.proc.wait(check=False)
            error = done.stderr.decode(errors="replace") if isinstance(done.stderr, bytes) else ""
            raise HostError(f"{self.conn.target.node}: `{SERVE}' ended ({done.exit_status}): "
                            f"{error.strip()[-500:]}") from None


async def _in_own_thread(fn: Callable[..., None], *args: Any) -> None:
    """Run a blocking function in a thread of its own: in asyncio's shared pool, the writers of
    many hosts' streams could take every thread while they wait for readers that need one."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish(error: BaseException | None) -> None:
        if done.done():  # the awaiting task was cancelled
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error = None
        try:
            fn(*args)
        except BaseException as e:  # handed to the awaiting task
            error = e
        try:
            loop.call_soon_threadsafe(finish, error)
        except RuntimeError:  # the loop is gone: nobody waits any more
            pass

    threading.Thread(target=run, name="nixus-copy", daemon=True).start()
    await done


def _write_stream(infos: list[PathInfo], fd: int, on_bytes: Callable[[int], None]) -> None:
    """`nix-store --serve --write`'s input that adds these paths into a pipe, then close it."""
    out = _Out(fd, on_bytes)
    try:
        for info in infos:
            # After the references: registration time (0: the host's now), NAR size, "ultimate",
            # no signatures, no content address; then the NAR.
            out.put(_int(ADD_TO_STORE_NAR) + _str(info.path) + _str(info.deriver) + _str(info.nar_hash)
                    + _int(len(info.references)) + b"".join(map(_str, info.references))
                    + _int(0) + _int(info.nar_size) + _int(0) + _int(0) + _str(""))
            out.put(_str("nix-archive-1"))
            _nar(os.fsencode(info.path), out)
        out.flush()
    finally:
        os.close(fd)


def _nar(path: bytes, out: _Out) -> None:
    """A file, symlink or directory as Nix archives it (`nix-store --dump`): entries sorted by
    name, regular files with their executable bit and contents."""
    st = os.lstat(path)
    out.put(_str("(") + _str("type"))
    if stat.S_ISLNK(st.st_mode):
        out.put(_str("symlink") + _str("target") + _str(os.readlink(path)))
    elif stat.S_ISDIR(st.st_mode):
        out.put(_str("directory"))
        for name in sorted(os.listdir(path)):
            out.put(_str("entry") + _str("(") + _str("name") + _str(name) + _str("node"))
            _nar(os.path.join(path, name), out)
            out.put(_str(")"))
    elif stat.S_ISREG(st.st_mode):
        out.put(_str("regular") + (_str("executable") + _str("") if st.st_mode & stat.S_IXUSR else b"")
                + _str("contents") + _int(st.st_size))
        out.file(path, st.st_size)
        out.put(b"\0" * (-st.st_size % 8))
    else:
        raise HostError(f"{path.decode(errors='replace')}: not a file, directory or symlink; Nix cannot archive it")
    out.put(_str(")"))


class _Out:
    """Buffered writes into the pipe; large file contents go from file to pipe in the kernel."""

    def __init__(self, fd: int, on_bytes: Callable[[int], None]):
        self.fd, self.on_bytes = fd, on_bytes
        self.buffer = bytearray()

    def put(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= FILE_CHUNK:
            self.flush()

    def flush(self) -> None:
        data, self.buffer = bytes(self.buffer), bytearray()
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.on_bytes(n)

    def file(self, path: bytes, size: int) -> None:
        """The file's contents, which must be `size` bytes long (a store path does not change)."""
        with open(path, "rb", buffering=0) as f:
            if size < FILE_CHUNK or not hasattr(os, "splice"):
                while size:
                    data = f.read(min(size, FILE_CHUNK))
                    if not data:
                        break
                    self.put(data)
                    size -= len(data)
            else:
                self.flush()
                while size and (n := os.splice(f.fileno(), self.fd, min(size, FILE_CHUNK))):
                    self.on_bytes(n)
                    size -= n
        if size:
            raise HostError(f"{path.decode(errors='replace')} became shorter while it was read")


def _int(n: int) -> bytes:
    """An integer as Nix's protocols and archives write one: 8 bytes, little-endian."""
    return struct.pack("<Q", n)


def _str(s: str | bytes) -> bytes:
    """A string as Nix writes one: its length, its bytes, zeros up to a multiple of 8."""
    data = os.fsencode(s) if isinstance(s, str) else s
    return _int(len(data)) + data + b"\0" * (-len(data) % 8)
