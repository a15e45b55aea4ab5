"""Test hosts and `nixus build`: a built system copied onto a host and switched there really
lets the granted user in; hosts come and go without leaving anything behind."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed_fixture import TestbedFleet, leftovers, testbed_fleet  # noqa: F401 - the fixture

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.nix]


def _fleet(tb: TestbedFleet, nodes: list[str], extra: str = "", configuration: str = "{}") -> None:
    _, alice = tb.key("alice")
    tb.write(textwrap.dedent(f"""\
        modules = [{{
            "defaults": lambda name, **_: {{"configuration": {{
                "networking": {{"hostName": name}}, "services": {{"openssh": {{"enable": True}}}},
                "users": {{"users": {{"alice": {{"isNormalUser": True}}, "bob": {{"isNormalUser": True}}}}}},
            }}}},
            "nodes": {{{", ".join(f'"{n}": {{}}' for n in nodes)}}},
            "ssh": {{"access": {{"{nodes[0]}": {{"keys": {{"alice": {{
                "publicKey": "{alice}", "hasAccessTo": {{"{nodes[-1]}": {{"alice": True}}}}}}}}}}}}}},
        }}, {{"nodes": {{"{nodes[-1]}": {{"configuration": {configuration}}}}}}}]
        {extra}"""))


def _built(tb: TestbedFleet) -> dict[str, dict]:
    r = tb.nixus("build", "--json")
    return {b["node"]: b for b in json.loads(r.out)} if r.out.strip() else {}


def test_built_system_switched_on_a_host_lets_the_granted_user_in(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _fleet(tb, ["laptop", "web1"])
    up = tb.nixus("testbed", "up")
    assert up.code == 0, up.err
    r = tb.nixus("build")
    assert r.code == 0, r.err
    builds = _built(tb)
    assert all(b["ok"] and b["closureSize"] > 0 for b in builds.values())
    switched = tb.copy_and_switch("web1", builds["web1"]["path"])
    assert switched.returncode == 0, switched.stdout + switched.stderr
    alice_key, _ = tb.key("alice")
    bob_key, _ = tb.key("bob")
    login = tb.ssh("alice", "web1", "id -un; cat /etc/hostname 2>/dev/null; hostname", key=alice_key)
    assert login.returncode == 0, login.stderr
    assert login.stdout.split()[0] == "alice"
    assert tb.ssh("bob", "web1", "true", key=bob_key).returncode != 0
    assert tb.ssh("alice", "laptop", "true", key=alice_key).returncode != 0  # granted on web1 only
    down = tb.nixus("testbed", "down")
    assert down.code == 0, down.err
    assert leftovers(tb.dir) == []


def test_up_twice_is_harmless_and_status_reports_hosts(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _fleet(tb, ["a", "b"])
    assert tb.nixus("testbed", "up").code == 0
    first = {n: tb.host(n) for n in ("a", "b")}
    assert tb.nixus("testbed", "up").code == 0
    assert {n: tb.host(n) for n in ("a", "b")} == first
    status = json.loads(tb.nixus("testbed", "status", "--json").out)
    assert {(s["node"], s["running"], s["ssh"]) for s in status} == {("a", True, True), ("b", True, True)}


def test_eight_hosts_run_at_once(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    nodes = [f"n{i}" for i in range(8)]
    _fleet(tb, nodes)
    r = tb.nixus("testbed", "up")
    assert r.code == 0, r.err
    for n in nodes:
        assert tb.ssh("root", n, "cat /etc/nixus-testbed/host.json").returncode == 0


def test_unknown_option_is_the_module_system_error_under_the_node(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _fleet(tb, ["a", "b"], configuration='{"services": {"nosuchservice": {"enable": True}}}')
    assert tb.nixus("testbed", "up").code == 0
    r = tb.nixus("build")
    assert r.code == 1
    assert "b: FAILED" in r.err and "The option `services.nosuchservice' does not exist" in r.err
    assert "a: /nix/store/" in r.out  # the other node still built


def test_failing_service_makes_switch_to_configuration_fail(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _fleet(tb, ["a", "b"], configuration='{"systemd": {"services": {"broken": {"script": "echo no; exit 3"}}}}')
    assert tb.nixus("testbed", "up").code == 0
    builds = _built(tb)
    switched = tb.copy_and_switch("b", builds["b"]["path"])
    assert switched.returncode == 4
    assert "service broken failed (exit status 3)" in switched.stderr


def test_reboot_starts_the_system_chosen_by_the_last_switch(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _fleet(tb, ["a", "b"], configuration='{"environment": {"etc": {"release": {"text": "v2\\n"}}}}')
    assert tb.nixus("testbed", "up").code == 0
    builds = _built(tb)
    assert tb.copy_and_switch("b", builds["b"]["path"], action="boot").returncode == 0
    assert tb.ssh("root", "b", "cat /etc/release").returncode != 0  # boot: not active yet
    assert tb.nixus("testbed", "reboot", "b").code == 0
    after = tb.ssh("root", "b", "cat /etc/release")
    assert after.returncode == 0 and after.stdout == "v2\n"


def test_teardown_after_a_failed_test_leaves_nothing(tmp_path: Path) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(textwrap.dedent("""\
        from testbed_fixture import testbed_fleet
        def test_fails(testbed_fleet):
            testbed_fleet.write('modules = [{"nodes": {"x": {}, "y": {}}}]')
            assert testbed_fleet.nixus("testbed", "up").code == 0
            assert False, "deliberate failure with hosts running"
        """))
    tests_dir = Path(__file__).parent
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner),
                        "--basetemp", str(tmp_path / "inner"), "--rootdir", str(tmp_path)],
                       capture_output=True, text=True, cwd=tests_dir,
                       env={**__import__("os").environ, "PYTHONPATH": str(tests_dir)})
    assert "deliberate failure with hosts running" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 1
    inner_dirs = list((tmp_path / "inner").glob("test_fails*"))
    assert inner_dirs and all(leftovers(d) == [] for d in inner_dirs)
