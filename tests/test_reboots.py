"""A host that restarts in the middle of a switch ends on one system, the same one it runs and
boots, and `nixus deploy` says which: test hosts held at each step of the switch, then
restarted (`nixus testbed reboot`) right there."""

from __future__ import annotations

import json
import textwrap

import pytest

from testbed_fixture import TestbedFleet, testbed_fleet  # noqa: F401 - the fixture

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.nix]

PROFILE = "/nix/var/nix/profiles/system"
BOOT_ENTRY = "/nix/var/nixus/boot-system"  # what a test host boots (its boot loader)
INTENT = "/nix/var/nixus/commit"


def _fleet(tb: TestbedFleet, text: str) -> None:
    tb.write(textwrap.dedent(f"""\
        modules = [{{
            "defaults": lambda name, **_: {{"configuration": {{"networking": {{"hostName": name}},
                "environment": {{"etc": {{"version": {{"text": {text!r}}}}}}}}}}},
            "nodes": {{"b": {{"successTimeout": 20}}}},
        }}]
        """))


def _systems(tb: TestbedFleet) -> tuple[str, str, str]:
    """What b runs, what its system profile is on, and what it boots."""
    out = tb.ssh("root", "b", f"readlink -e /run/current-system {PROFILE} {BOOT_ENTRY}").stdout.split()
    return out[0], out[1], out[2]


def _deployed_then_changed(tb: TestbedFleet) -> str:
    """The fleet deployed on running test hosts, then changed; what b ran before the change."""
    _fleet(tb, "one\n")
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    old = _systems(tb)[0]
    _fleet(tb, "two\n")
    return old


def _deploy_restarted_at(tb: TestbedFleet, when: str, action: str) -> dict:
    """Deploy the fleet, restart b while its switch holds at `when` (before/after) `action`
    (`switch-to-configuration ACTION`), and return b's result."""
    with tb.deploying_held("b", f"{when}-{action}", "--json") as proc:
        reboot = tb.nixus("testbed", "reboot", "b")
        assert reboot.code == 0, reboot.err
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    return {h["node"]: h for h in json.loads(out)}["b"]


@pytest.mark.parametrize("when, action, ends_on", [
    ("before", "test", "old"),    # activating the new system
    ("before", "boot", "old"),    # committing: the profile set, the boot entry not yet
    ("after", "boot", "new"),     # committing: both done, the switcher not finished
])
def test_a_restart_during_the_switch_leaves_the_host_on_one_system_and_says_which(
        testbed_fleet: TestbedFleet, when: str, action: str, ends_on: str) -> None:
    tb = testbed_fleet
    old = _deployed_then_changed(tb)

    b = _deploy_restarted_at(tb, when, action)

    want = old if ends_on == "old" else b["new"]
    assert _systems(tb) == (want, want, want)
    assert tb.ssh("root", "b", f"test -e {INTENT}").returncode != 0
    assert f"the host restarted during the switch; it runs and boots the {ends_on} system" in b["message"], b
    assert b["outcome"] == ("rolled-back" if ends_on == "old" else "switched"), b
    # What nixus recorded is what runs: no drift, and the next deploy knows what to do.
    status = {h["node"]: h for h in json.loads(tb.nixus("status", "--json").out)}
    assert not status["b"]["drift"], status["b"]
    again = {h["node"]: h for h in json.loads(tb.nixus("deploy", "--json").out)}["b"]
    assert again["outcome"] == ("switched" if ends_on == "old" else "unchanged"), again
    assert tb.ssh("root", "b", "cat /etc/version").stdout == "two\n"


def test_a_commit_cut_short_with_nobody_watching_is_undone_by_the_next_deploy(
        testbed_fleet: TestbedFleet) -> None:
    """The deployer is gone too: the host boots the old system, its profile was already on the
    new one; the next switch puts the profile back before it starts."""
    tb = testbed_fleet
    old = _deployed_then_changed(tb)
    with tb.deploying_held("b", "before-boot") as proc:
        proc.kill()
        proc.wait()
        assert tb.nixus("testbed", "reboot", "b").code == 0
    current, profile, boot = _systems(tb)
    assert current == boot == old and profile != old  # what the cut-short commit left
    assert tb.ssh("root", "b", f"test -e {INTENT}").returncode == 0

    _fleet(tb, "three\n")
    r = tb.nixus("deploy", "--json")
    assert r.code == 0, r.err
    new = {h["node"]: h for h in json.loads(r.out)}["b"]["new"]
    assert _systems(tb) == (new, new, new)
    assert tb.ssh("root", "b", f"test -e {INTENT}").returncode != 0
    log = tb.ssh("root", "b", "cat /run/nixus/deploys/*/activation.log").stdout
    assert "undoing the commit of" in log
