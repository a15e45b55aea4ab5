"""Ctrl-C for work running off the main thread: the main thread catches it and tells whoever
registered (a deploy stops starting hosts but lets switching ones finish or roll back)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_handlers: list[Callable[[], None]] = []
_lock = threading.Lock()


@contextmanager
def on_interrupt(handler: Callable[[], None]) -> Iterator[None]:
    """Call `handler` (from the main thread) on Ctrl-C while the block runs."""
    with _lock:
        _handlers.append(handler)
    try:
        yield
    finally:
        with _lock:
            _handlers.remove(handler)


def interrupt() -> bool:
    """Deliver a Ctrl-C; False when nobody wants it (the caller should just stop)."""
    with _lock:
        handlers = list(_handlers)
    for h in handlers:
        h()
    return bool(handlers)
