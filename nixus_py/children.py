"""Processes nixus starts (Nix evaluations and builds) end with it, even when nixus is killed.

`die_with_parent` runs in the child between fork and exec (`preexec_fn`): the kernel sends the
child SIGKILL when the thread that started it ends, so a deployer killed in the middle of an
evaluation leaves no `nix-instantiate` running on under PID 1. Start children from a thread that
waits for them (the main thread, or the worker thread of a build). Standard library only: the
first Nix round starts before the rest of nixus is imported.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)  # the C library nixus already runs on


def die_with_parent() -> None:
    """In the child: be killed when the process (thread) that started it dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
