"""A pytest fixture for fleets on local test hosts (needs root, Nix, sshd, iproute2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import Result, run_nixus

TOOLS = ("unshare", "ip", "sshd", "ssh", "ssh-keygen", "nix-store", "nix-build")


def require_testbed_tools() -> None:
    """Fail (never skip) when the machine cannot run test hosts: CI installs everything."""
    if os.geteuid() != 0:
        pytest.fail("test hosts need root (namespaces, veth pairs): run the tests as root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"test hosts need {', '.join(missing)}: run the tests through ./scripts/test")


class TestbedFleet:
    """A fleet directory whose nodes run on test hosts."""

    __test__ = False  # a helper, not a test class

    def __init__(self, root: Path):
        self.dir = root
        self.keys = root / "keys"
        self.keys.mkdir()

    def write(self, modules_source: str) -> None:
        """Write fleet.py: the given `modules = [...]` plus the generated testbed module."""
        (self.dir / "fleet.py").write_text(
            "from pathlib import Path\n" + modules_source +
            "\nif Path(__file__).with_name('testbed-hosts.py').exists():\n"
            "    modules.append('testbed-hosts.py')\n")

    def nixus(self, *args: str) -> Result:
        return run_nixus(*args, cwd=self.dir)

    @contextmanager
    def deploying_held(self, node: str, point: str, *args: str) -> Iterator[subprocess.Popen]:
        """`nixus deploy ARGS` running, with `node`'s switch held at `point` (`before-boot`, say:
        see the testbed OS's activate.py) until the block ends; the deploy's process."""
        state = Path(self.host(node)["dir"]) / "etc" / "nixus-testbed"
        (state / f"hold-{point}").touch()
        proc = subprocess.Popen([shutil.which("nixus") or "nixus", "deploy", *args], cwd=self.dir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not (state / f"held-{point}").exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, f"{node}'s switch never reached {point}"
                time.sleep(0.05)
            yield proc
        finally:
            (state / f"hold-{point}").unlink(missing_ok=True)

    def key(self, name: str) -> tuple[Path, str]:
        """A user's ssh key pair: (private key file, public key line)."""
        path = self.keys / name
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
        return path, (self.keys / f"{name}.pub").read_text().strip()

    def host(self, node: str) -> dict:
        import json
        data = json.loads((self.dir / ".nixus-state/testbed/testbed.json").read_text())
        return data["hosts"][node]

    def known_hosts(self) -> Path:
        import json
        data = json.loads((self.dir / ".nixus-state/testbed/testbed.json").read_text())
        path = self.dir / "known_hosts"
        path.write_text("".join(f"{h['address']} {h['host_key']}\n" for h in data["hosts"].values()))
        return path

    def ssh(self, user: str, node: str, command: str, key: Path | None = None) -> subprocess.CompletedProcess:
        """Run a command on a test host over ssh, with strict host-key checking."""
        key = key or self.dir / ".nixus-state/testbed/deploy_key"
        return subprocess.run(
            ["ssh", "-o", f"UserKnownHostsFile={self.known_hosts()}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", "-i", str(key),
             f"{user}@{self.host(node)['address']}", command], capture_output=True, text=True, timeout=60)

    def copy_and_switch(self, node: str, system: str, action: str = "test") -> subprocess.CompletedProcess:
        """Plain `nix copy` of a built system to its host, then its switch-to-configuration."""
        key = self.dir / ".nixus-state/testbed/deploy_key"
        env = {**os.environ, "NIX_SSHOPTS": f"-i {key} -o UserKnownHostsFile={self.known_hosts()} "
                                            "-o StrictHostKeyChecking=yes -o BatchMode=yes"}
        subprocess.run(["nix", "--extra-experimental-features", "nix-command", "copy", "--to",
                        f"ssh://root@{self.host(node)['address']}", system], check=True, env=env,
                       capture_output=True, timeout=120)
        return self.ssh("root", node, f"{system}/bin/switch-to-configuration {action}")


def leftovers(root: Path) -> list[str]:
    """Anything a testbed under `root` left behind: processes, namespaces, interfaces, mounts, files."""
    found = []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    found += [f"process: {line}" for line in ps.splitlines() if str(root) in line]
    # A process still living in a host's mount namespace sees the host's bind mounts.
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(root) in (proc / "mountinfo").read_text():
                found.append(f"process in a host's namespace: {proc.name} {(proc / 'cmdline').read_bytes()!r}")
        except OSError:
            pass
    state = root / ".nixus-state" / "testbed"
    if state.exists():
        found.append(f"files: {state}")
    from nixus_py.testbed.hosts import Testbed
    tb = Testbed(state)
    found += [f"netns: {line}" for line in ns.splitlines() if line.startswith(f"nx{tb.id}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link: {line.split(':')[1].strip()}" for line in links.splitlines() if f"nx{tb.id}" in line]
    return found


@pytest.fixture
def testbed_fleet(tmp_path: Path) -> Iterator[TestbedFleet]:
    """A fleet directory; whatever test hosts it starts are torn down afterwards, even on failure."""
    require_testbed_tools()
    fleet = TestbedFleet(tmp_path)
    try:
        yield fleet
    finally:
        from nixus_py.testbed.hosts import Testbed
        Testbed(tmp_path / ".nixus-state" / "testbed").down()
