"""`nixus deploy` against real test hosts: logins, tunnels and DNS really work afterwards, and
every failure ends with the host on its old system or the new confirmed one, never between."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT
from testbed_fixture import TestbedFleet, require_testbed_tools, testbed_fleet  # noqa: F401 - the fixture

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.nix]

# Added to the example fleet: a user we hold the key of, and a web server on the VPN hub.
EXTRA = """
def _extra(**_):
    return {
        "ssh": {"access": {"gw": {"keys": {"alice": {
            "publicKey": ALICE, "hasAccessTo": {"web1": {"alice": True}}}}}}},
        "nodes": {
            "web1": {"configuration": {"users": {"users": {"alice": {"isNormalUser": True},
                                                           "bob": {"isNormalUser": True}}}}},
            "gw": {"configuration": {"systemd": {"services": {"vpn-web": {
                "script": "exec python3 -m http.server --bind 10.100.0.1 8080"}}}}},
        },
    }
modules.append(_extra)
"""


def _example_on_testbed(tb: TestbedFleet, grant: bool = True) -> None:
    _, alice = tb.key("alice")
    source = (EXAMPLES / "fleet.py").read_text()
    extra = EXTRA.replace("ALICE", json.dumps(alice))
    if not grant:
        extra = extra.replace('"hasAccessTo": {"web1": {"alice": True}}', '"hasAccessTo": {}')
    tb.write(source + extra)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestbedFleet]:
    """The example fleet on five test hosts, deployed once for the tests of this group."""
    require_testbed_tools()
    root = tmp_path_factory.mktemp("example")
    tb = TestbedFleet(root)
    try:
        _example_on_testbed(tb)
        up = tb.nixus("testbed", "up")
        assert up.code == 0, up.err
        r = tb.nixus("deploy", "--json")
        assert r.code == 0, r.out + r.err
        assert {h["outcome"] for h in json.loads(r.out)} == {"switched"}
        yield tb
    finally:
        from nixus_py.testbed.hosts import Testbed
        Testbed(root / ".nixus-state" / "testbed").down()


def test_granted_user_logs_in_and_others_are_refused(deployed: TestbedFleet) -> None:
    alice_key, _ = deployed.key("alice")
    bob_key, _ = deployed.key("bob")
    ok = deployed.ssh("alice", "web1", "id -un", key=alice_key)
    assert ok.returncode == 0 and ok.stdout.strip() == "alice", ok.stderr
    assert deployed.ssh("bob", "web1", "true", key=bob_key).returncode != 0
    assert deployed.ssh("alice", "web2", "true", key=alice_key).returncode != 0


def test_wireguard_tunnel_carries_tcp_traffic(deployed: TestbedFleet) -> None:
    fetch = ("for i in $(seq 50); do python3 -c \"import urllib.request as u; "
             "print(u.urlopen('http://10.100.0.1:8080/', timeout=2).status)\" 2>/dev/null && break; sleep 0.2; done")
    r = deployed.ssh("root", "web1", fetch)
    assert r.stdout.strip().endswith("200"), r.stdout + r.stderr
    route = deployed.ssh("root", "web1", "ip route get 10.100.0.1")
    assert "dev wg-backbone" in route.stdout
    transfer = deployed.ssh("root", "gw", "wg show wg-backbone transfer")
    assert any(int(line.split()[1]) > 0 for line in transfer.stdout.splitlines()), transfer.stdout


def _dig(address: str, name: str) -> str:
    return subprocess.run(["dig", f"@{address}", name, "A", "+short", "+time=1", "+tries=1"],
                          capture_output=True, text=True).stdout.strip()


def test_dns_primary_and_secondary_answer(deployed: TestbedFleet) -> None:
    web1 = deployed.host("web1")["address"]
    assert _dig(deployed.host("ns1")["address"], "web1.example.org") == web1
    deadline = time.monotonic() + 20
    answer = ""
    while time.monotonic() < deadline and answer != web1:  # the secondary transfers the zone
        answer = _dig(deployed.host("ns2")["address"], "web1.example.org")
        time.sleep(0.3)
    assert answer == web1
    cname = subprocess.run(["dig", f"@{deployed.host('ns2')['address']}", "www.example.org", "+short"],
                           capture_output=True, text=True).stdout
    assert "web1.example.org." in cname


def test_redeploy_with_nothing_changed_copies_nothing(deployed: TestbedFleet) -> None:
    r = deployed.nixus("deploy", "--json")
    assert r.code == 0, r.err
    hosts = json.loads(r.out)
    assert {h["outcome"] for h in hosts} == {"unchanged"}
    assert sum(h["copiedPaths"] for h in hosts) == 0


def test_status_and_history_report_what_runs_where(deployed: TestbedFleet) -> None:
    status = json.loads(deployed.nixus("status", "--json").out)
    assert all(s["reachable"] and not s["drift"] and s["generation"] == 1 for s in status)
    history = json.loads(deployed.nixus("history", "--json").out)
    assert history[-1]["goal"] == "switch" and {h["outcome"] for h in history[-1]["hosts"]} == {"switched"}


def test_revoking_a_grant_removes_the_login(deployed: TestbedFleet) -> None:
    alice_key, _ = deployed.key("alice")
    _example_on_testbed(deployed, grant=False)
    plan = deployed.nixus("plan", "--on", "web1")
    assert plan.code == 2 and "alice" in plan.out
    r = deployed.nixus("deploy", "--on", "web1")
    assert r.code == 0, r.out + r.err
    assert deployed.ssh("alice", "web1", "true", key=alice_key).returncode != 0
    _example_on_testbed(deployed)  # leave the grant as the other tests expect it
    assert deployed.nixus("deploy", "--on", "web1").code == 0


# --- failures: every host ends on its old system or the new confirmed one ----------------------

def _two_nodes(tb: TestbedFleet, extra_b: str = "{}", b_options: str = "", extra_all: str = "") -> None:
    """Nodes a and b; b with a secret, `extra_b` in its configuration and `b_options`; both
    with `extra_all` (more keys) in their configuration."""
    secret = tb.dir / "secret.txt"
    if not secret.exists():
        secret.write_text("s3cret-generation-1\n")
    tb.write(textwrap.dedent(f"""\
        modules = [{{
            "defaults": lambda name, **_: {{"configuration": {{"networking": {{"hostName": name}}{extra_all}}}}},
            "nodes": {{"a": {{}}, "b": {{"successTimeout": 4, {b_options}
                "secrets": {{"token": {{"source": "secret.txt", "path": "/var/lib/nixus/token"}}}}}}}},
        }}, {{"nodes": {{"b": {{"configuration": {extra_b}}}}}}}]
        """))


def _current(tb: TestbedFleet, node: str) -> str:
    return tb.ssh("root", node, "readlink -e /run/current-system").stdout.strip()


def _two_nodes_deployed(tb: TestbedFleet, extra_b: str = "{}", b_options: str = "") -> str:
    """_two_nodes on running test hosts, deployed; b's system."""
    _two_nodes(tb, extra_b, b_options)
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    return _current(tb, "b")


def test_failing_service_rolls_back_to_the_old_generation(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    old = _two_nodes_deployed(tb)
    _two_nodes(tb, '{"systemd": {"services": {"broken": {"script": "exit 3"}}}}')
    r = tb.nixus("deploy", "--json")
    assert r.code == 1
    result = {h["node"]: h for h in json.loads(r.out)}
    assert result["b"]["outcome"] == "rolled-back" and "activation failed" in result["b"]["message"]
    assert result["a"]["outcome"] == "unchanged"
    assert _current(tb, "b") == old


def test_change_that_breaks_ssh_rolls_back_by_itself(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    old = _two_nodes_deployed(tb)
    _two_nodes(tb, '{"services": {"openssh": {"ports": [2222]}}}')
    started = time.monotonic()
    r = tb.nixus("deploy", "--json")
    assert r.code == 1
    result = {h["node"]: h for h in json.loads(r.out)}
    assert result["b"]["outcome"] == "rolled-back" and "no confirmation within 4s" in result["b"]["message"]
    assert time.monotonic() - started < 60
    assert _current(tb, "b") == old  # and it answers on port 22 again


def test_deployer_killed_during_switch_leaves_old_or_confirmed_system(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    old = _two_nodes_deployed(tb, b_options='"switchTimeout": 30,')
    # A slow activation gives us time to kill the deployer while b is switching.
    _two_nodes(tb, '{"systemd": {"services": {"slow": {"script": "sleep 2", "serviceConfig": {"Type": "oneshot"}}}}}',
               b_options='"switchTimeout": 30,')
    proc = subprocess.Popen([shutil.which("nixus") or "nixus", "deploy", "--on", "b"], cwd=tb.dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "activating" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 40
    state = ""
    while time.monotonic() < deadline:
        state = tb.ssh("root", "b", 'cat "$(ls -td /run/nixus/deploys/*/ | head -1)state"').stdout.strip()
        if state.startswith(("rolled-back", "committed")):
            break
        time.sleep(0.5)
    assert state.startswith("rolled-back: no confirmation"), state
    assert _current(tb, "b") == old
    r = tb.nixus("deploy", "--on", "b", "--json")  # the lock is free again, here and on the host
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out)[0]["outcome"] == "switched"


def test_ctrl_c_lets_the_switching_host_finish_and_starts_no_other(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    old_b = _two_nodes_deployed(tb)
    # Both nodes change, with an activation slow enough to press Ctrl-C while `a` switches.
    _two_nodes(tb, extra_all=', "systemd": {"services": {"slow": {"script": "sleep 2", '
                             '"serviceConfig": {"Type": "oneshot"}}}}')
    proc = subprocess.Popen([shutil.which("nixus") or "nixus", "deploy", "--parallel", "1", "--json"], cwd=tb.dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("a: activating"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, "".join(seen) + err
    assert "interrupted: no new hosts will be started" in err
    result = {h["node"]: h for h in json.loads(out)}
    assert result["a"]["outcome"] == "switched" and result["a"]["message"] == "committed"
    assert _current(tb, "a") == result["a"]["new"]
    assert result["b"]["outcome"] == "skipped" and result["b"]["message"] == "not started: interrupted"
    assert _current(tb, "b") == old_b
    assert "failed: b" in err


def test_wrong_host_key_is_refused_and_nothing_is_copied(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    hosts = tb.dir / "testbed-hosts.py"
    a_key, b_key = tb.host("a")["host_key"], tb.host("b")["host_key"]
    hosts.write_text(hosts.read_text().replace(b_key, a_key))  # b claims a's host key
    r = tb.nixus("deploy", "--json")
    assert r.code == 1
    result = {h["node"]: h for h in json.loads(r.out)}
    assert result["a"]["outcome"] == "switched"
    assert result["b"]["outcome"] == "failed" and "host key" in result["b"]["message"]
    # Both keys by fingerprint: the one the host presented, the one the fleet expects.
    assert f"it presented {_fingerprint(b_key)}" in result["b"]["message"], result["b"]["message"]
    assert f"nodes.b.hostKeys: {_fingerprint(a_key)}" in result["b"]["message"]
    assert result["b"]["copiedPaths"] == 0
    # b's own store (seen from inside its mount namespace) got nothing from us.
    store = subprocess.run(["nsenter", "-t", str(tb.host("b")["pid"]), "-m", "--", "ls", "/nix/store"],
                           capture_output=True, text=True, check=True)
    assert "testbed-system" not in store.stdout


def _fingerprint(public_key: str) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", "-"], input=public_key, capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def test_a_host_key_that_changes_before_the_confirming_connection_is_named_in_the_rollback(
        testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    old = _two_nodes_deployed(tb)
    _two_nodes(tb, '{"environment": {"etc": {"new": {"text": "new"}}}}')
    key = Path(tb.host("b")["dir"]) / "etc" / "ssh" / "ssh_host_ed25519_key"
    originals = {f: f.read_bytes() for f in (key, key.with_suffix(".pub"))}
    with tb.deploying_held("b", "after-test", "--on", "b", "--json") as proc:  # activated, not confirmed
        for f in originals:
            f.unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out, _ = proc.communicate(timeout=120)
    b = json.loads(out)[0]
    presented = key.with_suffix(".pub").read_text()
    for f, data in originals.items():  # (so that the test can look at b)
        f.write_bytes(data)
    assert b["outcome"] == "rolled-back", b
    assert "no confirmation within" in b["message"] and "the confirming connection was refused" in b["message"]
    assert f"it presented {_fingerprint(presented)}" in b["message"], b["message"]
    assert f"nodes.b.hostKeys: {_fingerprint(tb.host('b')['host_key'])}" in b["message"]
    assert _current(tb, "b") == old


def test_a_host_without_host_keys_is_refused_unless_a_known_hosts_file_vouches_for_it(
        testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    hosts = tb.dir / "testbed-hosts.py"
    b = tb.host("b")
    hosts.write_text(hosts.read_text().replace(f"mkForce([{json.dumps(b['host_key'])}])", "mkForce([])"))
    r = tb.nixus("deploy", "--json")
    assert r.code == 1 and "`nodes.b' has no hostKeys" in r.err and "deploy.knownHostsFile" in r.err, r.err
    assert _current(tb, "a") == _current(tb, "b") == ""  # no host was touched
    known = tb.dir / "known_hosts"
    known.write_text(f"{b['address']} {tb.host('a')['host_key']}\n")  # a key, but not b's
    fleet = tb.dir / "fleet.py"
    fleet.write_text(fleet.read_text() + f"\nmodules.append({{'deploy': {{'knownHostsFile': {str(known)!r}}}}})\n")
    r = tb.nixus("deploy", "--json")
    result = {h["node"]: h for h in json.loads(r.out)}
    assert r.code == 1 and result["b"]["outcome"] == "failed" and "host key" in result["b"]["message"], r.out
    known.write_text(f"{b['address']} {b['host_key']}\n")
    r = tb.nixus("deploy", "--json")
    assert r.code == 0, r.out + r.err
    assert {h["node"]: h["outcome"] for h in json.loads(r.out)}["b"] == "switched"


def test_unreachable_host_fails_alone(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    from nixus_py.testbed.hosts import Testbed
    testbed = Testbed(tb.dir / ".nixus-state" / "testbed")
    testbed._kill(testbed.hosts["b"])  # b's machine is down: nothing answers at its address
    r = tb.nixus("deploy", "--keep-going", "--json")
    assert r.code == 1
    result = {h["node"]: h for h in json.loads(r.out)}
    assert result["a"]["outcome"] == "switched"
    assert result["b"]["outcome"] == "unreachable" and "cannot reach" in result["b"]["message"]
    assert "failed: b" in r.err


def test_a_firewall_that_locks_nixus_out_is_rolled_back(testbed_fleet: TestbedFleet) -> None:
    """The new system's firewall drops new ssh connections: the confirming one cannot get in,
    the host rolls back by itself, and lets nixus in again."""
    tb = testbed_fleet
    old = _two_nodes_deployed(tb)
    _two_nodes(tb, '{"services": {"openssh": {"openFirewall": False}}}')
    r = tb.nixus("deploy", "--on", "b", "--json")
    b = json.loads(r.out)[0]
    assert r.code == 1 and b["outcome"] == "rolled-back" and "no confirmation within 4s" in b["message"], b
    assert _current(tb, "b") == old  # over a new connection


def test_the_firewall_drops_what_no_port_allows(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    serve = ('{"systemd": {"services": {"web": {"script": "exec python3 -m http.server --bind 0.0.0.0 8081"}}}'
             + ', "networking": {"firewall": {"allowedTCPPorts": [%s]}}}')
    _two_nodes_deployed(tb, serve % "")
    get = "python3 -c \"import urllib.request as u; print(u.urlopen('http://%s:8081/', timeout=2).status)\""
    fetch = get % tb.host("b")["address"]
    local = f"for i in $(seq 50); do {get % '127.0.0.1'} && break; sleep 0.1; done"
    assert tb.ssh("root", "b", local).stdout.strip() == "200"  # it serves, on loopback
    assert tb.ssh("root", "a", fetch).returncode != 0  # and a cannot reach it
    _two_nodes(tb, serve % "8081")
    assert tb.nixus("deploy", "--on", "b").code == 0
    assert tb.ssh("root", "a", fetch).stdout.strip() == "200"


def test_rollback_restores_that_generations_secrets(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    assert tb.ssh("root", "b", "cat /var/lib/nixus/token").stdout == "s3cret-generation-1\n"
    (tb.dir / "secret.txt").write_text("s3cret-generation-2\n")
    _two_nodes(tb, '{"environment": {"etc": {"generation": {"text": "2\\\\n"}}}}')
    assert tb.nixus("deploy").code == 0
    assert tb.ssh("root", "b", "cat /var/lib/nixus/token").stdout == "s3cret-generation-2\n"
    r = tb.nixus("rollback", "b")
    assert r.code == 0, r.out + r.err
    assert "b: now runs the system of generation 1 as generation 3" in r.out + r.err
    assert tb.ssh("root", "b", "cat /var/lib/nixus/token").stdout == "s3cret-generation-1\n"
    # What nixus records is what b runs: the plan of the newest fleet changes b back.
    plan = json.loads(tb.nixus("plan", "--json").out)
    assert plan["changed"] == ["b"], plan
    assert tb.ssh("root", "b", "stat -c %a /var/lib/nixus/token").stdout.strip() == "400"
    # The secret is nowhere in a store, the rendered modules, the records or a command line.
    for secret in ("s3cret-generation-1", "s3cret-generation-2"):
        local = subprocess.run(["grep", "-rl", secret, "/nix/store", str(tb.dir / ".nixus-state" / "build")],
                               capture_output=True, text=True).stdout
        assert local == ""
        for db in (tb.dir / ".nixus-state").glob("state.sqlite3*"):  # the database and its log
            assert secret.encode() not in db.read_bytes()
        remote = tb.ssh("root", "b", f"grep -rl {secret} /nix/store /var/log || true").stdout
        assert remote.strip() == ""


def test_a_secret_is_never_written_through_a_directory_that_its_user_controls(testbed_fleet: TestbedFleet) -> None:
    """bob owns his home: had root written a secret below it, bob could have swapped a directory
    for a link and had root write the file anywhere (here /etc/evil)."""
    tb = testbed_fleet
    (tb.dir / "secret.txt").write_text("s3cret\n")

    def secret_at(path: str) -> None:
        tb.write(f"modules = [{{'nodes': {{'b': {{'successTimeout': 4, 'secrets': {{'token': {{"
                 f"'source': 'secret.txt', 'path': {path!r}}}}}, 'configuration': {{'users': {{'users': "
                 f"{{'bob': {{'isNormalUser': True}}}}}}}}}}}}}}]\n")
    secret_at("/var/lib/nixus/token")
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    old = _current(tb, "b")
    assert tb.ssh("root", "b", "ln -s /etc /home/bob/link && chown -h bob /home/bob/link").returncode == 0
    for path in ("/home/bob/link/evil", "/home/bob/.secrets/token"):
        secret_at(path)
        r = tb.nixus("deploy", "--json")
        assert r.code == 1, r.out + r.err
        b = next(h for h in json.loads(r.out) if h["node"] == "b")
        assert b["outcome"] == "rolled-back", b
        assert f"cannot install the secrets: {path}: /home/bob is not owned by root" in b["message"]
        assert _current(tb, "b") == old
        assert tb.ssh("root", "b", "ls /etc/evil /home/bob/.secrets 2>&1 || true").stdout.count("No such file") == 2


def test_build_on_target_builds_the_system_on_the_host(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb, b_options='"buildOn": "target",')
    assert tb.nixus("testbed", "up").code == 0
    r = tb.nixus("deploy", "--json")
    assert r.code == 0, r.out + r.err
    b = next(h for h in json.loads(r.out) if h["node"] == "b")
    assert b["outcome"] == "switched"
    assert _current(tb, "b") == b["new"]
    local = subprocess.run(["nix-store", "--check-validity", b["new"]], capture_output=True)
    assert local.returncode != 0  # only the derivations travelled; the system was built there


def test_a_closure_of_many_megabytes_arrives_whole_over_the_one_connection(testbed_fleet: TestbedFleet) -> None:
    import asyncio
    from nixus_py.deploy.copy import copy_closure
    from nixus_py.deploy.ssh_host import SshHost
    from nixus_py.deploy.transport import Target
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    size = 33 << 20
    expr = (f'derivation {{ name = "nixus-big-{time.time_ns()}"; system = builtins.currentSystem; '
            f'builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "head -c {size} /dev/urandom > $out" ]; }}')
    big = subprocess.run(["nix-build", "--no-out-link", "--option", "substituters", "", "-E", expr],
                         capture_output=True, text=True, check=True).stdout.strip()
    b = tb.host("b")
    log = Path(b["dir"]) / "var" / "log" / "sshd.log"
    logins = log.read_text().count("Accepted publickey")
    target = Target(node="b", host=b["address"], host_keys=(b["host_key"],),
                    identity_file=str(tb.dir / ".nixus-state/testbed/deploy_key"))

    async def copy() -> int:
        host = await SshHost.open(target)
        try:
            return (await copy_closure(host, big, lambda stats: None)).paths
        finally:
            await host.close()

    try:
        assert asyncio.run(copy()) == 1
        # It came over nixus's one login, and its content is what the local store has (Nix
        # checked the hash it was told, and checks it again).
        assert log.read_text().count("Accepted publickey") == logins + 1
        assert tb.ssh("root", "b", f"nix-store --verify-path {big}").returncode == 0
        assert asyncio.run(copy()) == 0  # the host has it now
    finally:
        subprocess.run(["nix-store", "--delete", big], capture_output=True)


# b's `host` is localhost when NIXUS_LOCAL is set: only inside b's own namespaces, where this
# machine is b (mkOverride 10 is above the mkForce of testbed-hosts.py).
LOCAL_B = """
import os
from nixus_py.evaluate import mkOverride
modules = [{"nodes": {"b": {"successTimeout": 4, "configuration": {"environment": {"etc": {"where": {
    "text": os.environ.get("WHERE", "before") + "\\n"}}}}}}}]
if os.environ.get("NIXUS_LOCAL"):
    modules.append({"nodes": {"b": {"host": mkOverride(10, "localhost")}}})
"""


def _python_the_test_hosts_see() -> str:
    """An interpreter of this Python's version outside /root and /home (which a test host has
    its own of), to run nixus inside a test host."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.executable).resolve(), Path("/usr/bin") / version, Path("/usr/local/bin") / version):
        if candidate.exists() and not str(candidate).startswith(("/root/", "/home/", "/nix/")):
            return str(candidate)
    pytest.skip(f"no {version} outside /root, /home and /nix to run nixus inside a test host")


def test_localhost_is_deployed_without_ssh(testbed_fleet: TestbedFleet) -> None:
    """nixus run on b itself (inside b's namespaces), deploying `host = "localhost"`."""
    tb = testbed_fleet
    python = _python_the_test_hosts_see()
    tb.write(LOCAL_B)
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    b = tb.host("b")
    log = Path(b["dir"]) / "var" / "log" / "sshd.log"
    logins = log.read_text().count("Accepted publickey")
    here = os.readlink("/proc/self/ns/mnt")
    # (The check inside refuses to deploy unless this really runs in b's mount namespace.)
    inside = (f"import os, sys; assert os.readlink('/proc/self/ns/mnt') != {here!r}; "
              "from nixus_py.launch import main; sys.argv = ['nixus', 'deploy', '--json']; main()")
    site = next(p for p in sys.path if p.endswith("site-packages"))
    r = subprocess.run(["nsenter", "-t", str(b["pid"]), "-m", "-n", f"--wd={tb.dir}", "--", "env", "NIXUS_LOCAL=1",
                        "WHERE=after", f"PYTHONPATH={ROOT}:{site}", python, "-c", inside],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)[0]
    assert result["outcome"] == "switched"
    assert log.read_text().count("Accepted publickey") == logins  # no ssh at all
    assert tb.ssh("root", "b", "cat /etc/where").stdout == "after\n"
    assert _current(tb, "b") == result["new"]
    assert tb.ssh("root", "b", "readlink -e /nix/var/nix/profiles/system").stdout.strip() == result["new"]


def test_proxy_jump_reaches_a_host_only_through_another(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb, b_options='"proxyJump": "a",')
    assert tb.nixus("testbed", "up").code == 0
    a, b = tb.host("a"), tb.host("b")
    # b lets in ssh from a only: this machine can reach it through a, never directly.
    rules = (f"table inet nixus_test {{\n chain input {{\n  type filter hook input priority 0;\n"
             f"  ip saddr != {a['address']} tcp dport 22 drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", b["netns"], "nft", "-f", "-"], input=rules, text=True, check=True)
    assert tb.ssh("root", "b", "true").returncode == 255
    r = tb.nixus("deploy", "--json")
    assert r.code == 0, r.out + r.err
    assert {h["node"]: h["outcome"] for h in json.loads(r.out)} == {"a": "switched", "b": "switched"}
    log = (Path(b["dir"]) / "var" / "log" / "sshd.log").read_text()
    assert f"Accepted publickey for root from {a['address']}" in log
    status = json.loads(tb.nixus("status", "--on", "b", "--json").out)[0]
    assert status["reachable"] and status["current"] == json.loads(r.out)[1]["new"]


def test_proxy_jump_to_an_unknown_node_is_refused_before_any_host(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb, b_options='"proxyJump": "bastion",')
    (tb.dir / "known_hosts").write_text("")  # (no test hosts: without it, a's missing hostKeys stop it first)
    fleet = tb.dir / "fleet.py"
    fleet.write_text(fleet.read_text() + f"\nmodules.append({{'deploy': {{'knownHostsFile': {str(tb.dir / 'known_hosts')!r}}}}})\n")
    r = tb.nixus("deploy")
    assert r.code == 1
    assert "`nodes.b.proxyJump' names `bastion', which is not a node; defined at " in r.err
    assert "fleet.py:" in r.err and "Traceback" not in r.err


def test_substitute_on_target_fetches_from_the_hosts_binary_cache(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb, b_options='"substituteOnTarget": True,')
    assert tb.nixus("testbed", "up").code == 0
    built = json.loads(tb.nixus("build", "--on", "b", "--json").out)[0]["path"]
    # A binary cache of this test's own, which b's Nix uses (its paths unsigned, so trusted as they are).
    cache = tb.dir / "cache"
    subprocess.run(["nix", "--extra-experimental-features", "nix-command", "copy", "--to", f"file://{cache}",
                    built], check=True, capture_output=True)
    setup = tb.ssh("root", "b", f"printf 'substituters = file://{cache}\\nrequire-sigs = false\\n' >> /etc/nix/nix.conf")
    assert setup.returncode == 0, setup.stderr
    r = tb.nixus("deploy", "--on", "b", "--json")
    assert r.code == 0, r.out + r.err
    result = json.loads(r.out)[0]
    assert result["outcome"] == "switched" and result["new"] == built
    assert result["copiedPaths"] == 0  # everything came from the cache
    assert _current(tb, "b") == built


def test_deploy_as_a_user_with_sudo_switches_and_installs_the_secrets(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    # First as root: b gets a user `deployer` who may use sudo and logs in with the deploy key.
    deployer = ('{"users": {"users": {"deployer": {"isNormalUser": True, "openssh": {"authorizedKeys": {"keys": ['
                'k.read_text().strip() for k in [Path(__file__).parent / ".nixus-state/testbed/deploy_key.pub"] '
                'if k.exists()]}}}}}, '
                '"environment": {"etc": {"sudoers.d/deployer": {"text": "deployer ALL=(ALL) NOPASSWD: ALL\\n", '
                '"mode": "0440"}}}}')
    old = _two_nodes_deployed(tb, deployer)
    (tb.dir / "secret.txt").write_text("s3cret-generation-2\n")
    _two_nodes(tb, deployer.replace('"mode": "0440"}', '"mode": "0440"}, "generation": {"text": "2\\n"}'),
               b_options='"user": "deployer",')
    r = tb.nixus("deploy", "--on", "b", "--json")
    assert r.code == 0, r.out + r.err
    result = json.loads(r.out)[0]
    assert result["outcome"] == "switched" and result["old"] == old
    # The deploy key now lets in only `deployer` (the node's deploy user), who checks as root.
    check = tb.ssh("deployer", "b", "readlink -e /run/current-system; sudo cat /var/lib/nixus/token; "
                                    "sudo stat -c '%U %a' /var/lib/nixus/token")
    assert check.stdout == f"{result['new']}\ns3cret-generation-2\nroot 400\n", check.stderr
    log = (Path(tb.host("b")["dir"]) / "var" / "log" / "sshd.log").read_text()
    assert "Accepted publickey for deployer" in log


def test_second_deploy_of_the_same_fleet_stops_and_names_the_first(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb, '{"systemd": {"services": {"slow": {"script": "sleep 3", "serviceConfig": {"Type": "oneshot"}}}}}')
    assert tb.nixus("testbed", "up").code == 0
    first = subprocess.Popen([shutil.which("nixus") or "nixus", "deploy"], cwd=tb.dir, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if "activating" in line:
            break
    second = tb.nixus("deploy")
    assert second.code == 1
    assert "another nixus deploy of this fleet is running (pid" in second.err
    first.communicate(timeout=120)
    assert first.returncode == 0


def test_goals_test_boot_and_dry_activate(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes(tb)
    assert tb.nixus("testbed", "up").code == 0
    assert tb.nixus("deploy").code == 0
    profile = lambda: tb.ssh("root", "b", "readlink -e /nix/var/nix/profiles/system").stdout.strip()  # noqa: E731
    old = _current(tb, "b")
    _two_nodes(tb, '{"environment": {"etc": {"goal": {"text": "new\\n"}}}}')
    dry = json.loads(tb.nixus("deploy", "--on", "b", "--goal", "dry-activate", "--json").out)[0]
    assert dry["outcome"] == "dry-activated" and _current(tb, "b") == old and profile() == old
    tested = json.loads(tb.nixus("deploy", "--on", "b", "--goal", "test", "--json").out)[0]
    assert tested["outcome"] == "switched" and _current(tb, "b") == tested["new"] and profile() == old
    assert tb.ssh("root", "b", "cat /etc/goal").stdout == "new\n"
    _two_nodes(tb, '{"environment": {"etc": {"goal": {"text": "next boot\\n"}}}}')
    booted = json.loads(tb.nixus("deploy", "--on", "b", "--goal", "boot", "--json").out)[0]
    assert booted["outcome"] == "switched" and profile() == booted["new"] and _current(tb, "b") == tested["new"]
    assert tb.nixus("testbed", "reboot", "b").code == 0
    # `testbed reboot` returns once the host has booted: it runs the boot entry already.
    assert _current(tb, "b") == booted["new"]
    assert tb.ssh("root", "b", "cat /etc/goal").stdout == "next boot\n"


def test_a_damaged_state_database_stops_the_deploy_before_any_host_changes(testbed_fleet: TestbedFleet) -> None:
    """Without a record of what runs where, a deploy must not run; read-only commands still answer."""
    tb = testbed_fleet
    old = _two_nodes_deployed(tb)
    db = tb.dir / ".nixus-state" / "state.sqlite3"
    for log in db.parent.glob("state.sqlite3-*"):
        log.unlink()
    with db.open("r+b") as f:
        f.write(b"not a database header!!")
    _two_nodes(tb, '{"environment": {"etc": {"new": {"text": "new"}}}}')
    r = tb.nixus("deploy")
    assert r.code == 1, r.out + r.err
    assert f"the state database {db} cannot be used (file is not a database)" in r.err
    assert "Traceback" not in r.err
    assert _current(tb, "b") == old
    for command in ("history", "status", "plan"):
        r = tb.nixus(command)
        assert r.code in (0, 2), (command, r.err)
        assert "cannot be used" in r.err and "Traceback" not in r.err, command
    r = tb.nixus("rollback", "b")
    assert r.code == 1 and "cannot be used" in r.err and "Traceback" not in r.err, r.err
    assert _current(tb, "b") == old


def test_a_host_that_committed_is_recorded_even_if_the_deployer_dies_later(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    _two_nodes_deployed(tb)
    _two_nodes(tb, extra_all=', "systemd": {"services": {"slow": {"script": "sleep 2", '
                             '"serviceConfig": {"Type": "oneshot"}}}}')
    proc = subprocess.Popen([shutil.which("nixus") or "nixus", "deploy", "--parallel", "1"], cwd=tb.dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("b: activating"):  # a, one at a time, has committed
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    newest = json.loads(tb.nixus("history", "--json").out)[0]
    assert newest["finished"] is None
    # b's switch had started: its record says so (the host rolls back by itself, unconfirmed).
    assert {h["node"]: h["outcome"] for h in newest["hosts"]} == {"a": "switched", "b": "switching"}
    assert "did not finish" in tb.nixus("history").out
    status = {s["node"]: s for s in json.loads(tb.nixus("status", "--json").out)}
    assert status["a"]["drift"] is False and status["a"]["recorded"] == _current(tb, "a")


def test_a_host_that_commits_after_the_deployer_died_is_recorded_as_switched(testbed_fleet: TestbedFleet) -> None:
    """The deployer dies after confirming, while the host commits: the host's record, started
    before the switch, is settled from what the host runs, by `status` and the next deploy."""
    tb = testbed_fleet
    _two_nodes_deployed(tb)
    _two_nodes(tb, '{"environment": {"etc": {"later": {"text": "later"}}}}')
    with tb.deploying_held("b", "before-boot", "--on", "b") as proc:  # held in its commit, confirmed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # the switcher finishes its commit alone
        if tb.ssh("root", "b", "test -e /nix/var/nixus/commit").returncode != 0:
            break
        time.sleep(0.1)
    newest = json.loads(tb.nixus("history", "--json").out)[0]
    assert [(h["node"], h["outcome"]) for h in newest["hosts"]] == [("b", "switching")]
    status = {s["node"]: s for s in json.loads(tb.nixus("status", "--json").out)}
    assert status["b"]["lastOutcome"] == "switched-unwatched" and status["b"]["drift"] is False, status["b"]
    again = json.loads(tb.nixus("deploy", "--on", "b", "--json").out)[0]
    assert again["outcome"] == "unchanged", again
    settled = json.loads(tb.nixus("history", "--json").out)[1]
    assert [(h["node"], h["outcome"]) for h in settled["hosts"]] == [("b", "switched-unwatched")]
