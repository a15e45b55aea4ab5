"""`host = "localhost"`: the machine nixus runs on is deployed without ssh (`LocalHost`).

These tests check how it is reached and how its commands run; none of them switches this
machine (the switcher's steps are the same as over ssh, which test_deploy.py covers)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from nixus_py.deploy.host import HostError
from nixus_py.deploy.local_host import LocalHost, LocalShell
from nixus_py.deploy.targets import connect, target_for
from nixus_py.deploy.transport import Target
from nixus_py.evaluate.errors import NixusError
from nixus_py.fleet.evaluate import load_fleet

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"
HERE = Target(node="here", host="localhost")


def test_localhost_needs_no_host_keys_and_is_reached_without_ssh(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text(
        "modules = [{'nodes': {'here': {'host': 'localhost'}, 'web': {'host': '10.0.0.2'},\n"
        f"  'jumped': {{'host': 'localhost', 'proxyJump': 'gw'}}, 'gw': {{'hostKeys': ['{KEY}']}}}}}}]\n")
    fleet = load_fleet(tmp_path / "fleet.py")
    here = target_for(fleet, "here")
    assert here.local
    assert isinstance(asyncio.run(connect(here)), LocalHost)
    with pytest.raises(NixusError, match="nodes.web' has no hostKeys"):
        target_for(fleet, "web")
    with pytest.raises(NixusError, match="nodes.jumped' has no hostKeys"):  # localhost of another machine
        target_for(fleet, "jumped")


def test_commands_run_here_as_root_through_the_escalation_command_unless_nixus_is_root() -> None:
    escalating = LocalShell(Target(node="here", host="localhost", privilege=("env", "NIXUS_AS=root")), user="alice")
    assert asyncio.run(escalating.run('echo "$NIXUS_AS"')).stdout == "root\n"
    assert asyncio.run(escalating.run('echo "$NIXUS_AS"', root=False)).stdout == "\n"
    as_root = LocalShell(Target(node="here", host="localhost", privilege=("false",)), user="root")
    assert asyncio.run(as_root.run("echo direct")).stdout == "direct\n"


def test_a_failing_or_slow_local_command_is_a_host_error() -> None:
    shell = LocalShell(HERE)
    with pytest.raises(HostError, match="here: `echo' failed \\(3\\): oops"):
        asyncio.run(shell.run("echo oops >&2; exit 3"))
    with pytest.raises(HostError, match="here: `sleep' did not finish within 0 s"):
        asyncio.run(shell.run("sleep 5", timeout=0.2))


def test_a_streamed_command_hands_over_each_line_as_it_comes() -> None:
    lines: list[str] = []
    result = asyncio.run(LocalShell(HERE).stream("cat; echo end", lines.append, input="state activating\n"))
    assert lines == ["state activating", "end"] and result.code == 0


@pytest.mark.nix
def test_the_local_store_lacks_no_path_it_has(tmp_path: Path) -> None:
    made = subprocess.run(["nix-instantiate", "--eval", "--read-write-mode", "--json", "-E",
                           f'builtins.toFile "nixus-local-{tmp_path.name}" "here"'],
                          capture_output=True, text=True, check=True).stdout.strip().strip('"')
    absent = "/nix/store/" + "0" * 32 + "-nixus-absent"
    assert asyncio.run(LocalHost(LocalShell(HERE)).missing([made, absent], substitute=False)) == {absent}
