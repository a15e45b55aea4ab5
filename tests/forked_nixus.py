"""`nixus eval` many times at once, each in a fresh process forked from one that imported nixus.

Importing nixus takes longer than evaluating a small fleet, so the conformance tests run the
command's entry point in processes of a fork server that has imported it already.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from conftest import Result

# How long one evaluation may take, as a last guard: nixus's own limit on each Nix round ends it first.
EVAL_TIMEOUT = 100
NIX_TIMEOUT = 30


class _TimedOut(BaseException):
    """An evaluation ran past EVAL_TIMEOUT (not an Exception: nixus must not catch it)."""


def _time_out(signum: int, frame: Any) -> None:
    raise _TimedOut()


def nixus_eval(fleet: Path, attr: str) -> Result:
    """`nixus eval -f FLEET ATTR --json` through the command's entry point (exit code 124 when it
    runs past EVAL_TIMEOUT)."""
    from nixus_py import cli
    os.chdir(fleet.parent)
    sys.argv = ["nixus", "eval", "-f", str(fleet), *([attr] if attr else []), "--json"]
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    signal.signal(signal.SIGALRM, _time_out)
    signal.alarm(EVAL_TIMEOUT)
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main()
        except SystemExit as e:
            code = e.code
        except _TimedOut:
            code = 124
            print(f"nixus eval ran for more than {EVAL_TIMEOUT} s", file=sys.stderr)
        finally:
            signal.alarm(0)
    return Result(int(code or 0), out.getvalue(), err.getvalue())


@contextmanager
def forked_nixus(tmp: Path, preload: str) -> Iterator[ProcessPoolExecutor]:
    """A pool of one fresh process per evaluation, as the `nixus` command would be, with no bundled
    modules (only the module system is under test) and `preload` (the calling test module, which
    the workers unpickle their tasks from) imported once in the fork server."""
    with pytest.MonkeyPatch.context() as env:
        # The fork server keeps the environment it starts with.
        env.setenv("NIXUS_MODULES_DIR", str(tmp))
        env.setenv("NIXUS_NIX_TIMEOUT", str(NIX_TIMEOUT))  # a round that never ends fails well before
        env.setenv("NIXUS_NIX_MEMORY_MB", "2048")
        env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                os.environ.get("PYTHONPATH")])))
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(["nixus_py.cli", __name__, preload])
        # Each evaluation ends by itself (EVAL_TIMEOUT), so the pool's end waits for them.
        with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=forkserver, max_tasks_per_child=1) as pool:
            yield pool
