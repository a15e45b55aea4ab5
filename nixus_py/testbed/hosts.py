"""Local test hosts that behave like NixOS machines: one per node, reachable only over ssh.

Each host is a process tree in its own network namespace (a veth pair on a bridge gives it a
real address) and its own mount namespace with private /etc, /nix (own store, database and
profiles), /root, /home, /run, /var/lib and /var/log, running sshd with its own host key. The
deploy key is authorised for root. Traffic goes only to the bridge's subnet, which the testbed
creates and removes.
"""

from __future__ import annotations

import hashlib
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..evaluate.errors import NixusError
from ..fleet.formats import node_file
from ..settings import TESTBED_OS

BOOT_WAIT = 30.0  # seconds for a test host to boot (its boot activation included) and answer

# The host's init: private mounts, a fresh store on first start, then either the system of the
# last `switch`/`boot` (a reboot) or a plain sshd; `sleep` keeps the namespaces alive.
INIT = """set -e
d=$1
for m in etc nix root home var/lib var/log; do mount --bind "$d/$m" "/$m"; done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd
rm -f /var/log/booted
[ -e /nix/var/nix/db/db.sqlite ] || nix-store --init
if [ -x /nix/var/nixus/boot-system/bin/switch-to-configuration ]; then
  NIXUS_TESTBED_BOOTING=1 /nix/var/nixus/boot-system/bin/switch-to-configuration test > /var/log/boot.log 2>&1 || true
else
  /usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/log/sshd.log
fi
: > /var/log/booted
exec sleep infinity
"""
BOOTED = "var/log/booted"  # in the host's directory: made when the host has booted (INIT)

SSHD_CONFIG = """Port 22
ListenAddress {address}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
Subsystem sftp internal-sftp
MaxStartups 100:30:200
"""


@dataclass
class Host:
    """One test host: where it lives and how to reach it."""

    node: str
    index: int
    address: str
    netns: str
    veth: str
    dir: str
    host_key: str
    pid: int = 0

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False


class Testbed:
    """The test hosts of one fleet, under `root` (in the fleet's state directory)."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()
        self.id = digest[:4]
        self.first_subnet = int(digest[4:8], 16) % 250  # where the search for a free one starts
        self.subnet = ""  # 10.231.N, N chosen when the bridge is made (see _bridge)
        self.bridge = f"nx{self.id}br"
        self.state_file = self.root / "testbed.json"
        self.hosts: dict[str, Host] = {}
        if self.state_file.exists():
            data = json.loads(self.state_file.read_text())
            self.hosts = {n: Host(**h) for n, h in data["hosts"].items()}

    # --- keys and the nixpkgs stand-in ----------------------------------------------------
    @property
    def deploy_key(self) -> Path:
        return self.root / "deploy_key"

    @property
    def nixpkgs(self) -> Path:
        """A nixpkgs stand-in: the real nixpkgs lib next to the testbed OS's `nixos/`."""
        return self.root / "nixpkgs"

    def _prepare(self, nixpkgs_lib: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.deploy_key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nixus-testbed-deploy",
                  "-f", str(self.deploy_key)])
        self.nixpkgs.mkdir(exist_ok=True)
        for name, target in (("lib", nixpkgs_lib), ("nixos", TESTBED_OS)):
            link = self.nixpkgs / name
            if not link.is_symlink() or Path(os.readlink(link)) != target:
                link.unlink(missing_ok=True)
                link.symlink_to(target)
        self._bridge()

    def _bridge(self) -> None:
        """The testbed's bridge, with a /24 of 10.231.0.0/16 that no other interface has: two
        testbeds (of two fleets, or tests) on one subnet would each reach the other's hosts."""
        mine = _run(["ip", "-4", "-o", "address", "show", "dev", self.bridge], check=False)
        if mine.returncode == 0:
            found = re.search(r"inet (10\.231\.\d+)\.1/", mine.stdout)
            if found:
                self.subnet = found.group(1)
                return
            _run(["ip", "link", "del", self.bridge], check=False)
        taken = set(re.findall(r"inet (10\.231\.\d+)\.", _run(["ip", "-4", "-o", "address"]).stdout))
        free = [f"10.231.{(self.first_subnet + k) % 250 + 1}" for k in range(250)]
        self.subnet = next((n for n in free if n not in taken), "")
        if not self.subnet:
            raise NixusError("every 10.231.N.0/24 subnet for test hosts is in use")
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "address", "add", f"{self.subnet}.1/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    # --- lifecycle -----------------------------------------------------------------------
    def up(self, nodes: list[str], nixpkgs_lib: Path) -> list[Host]:
        """Start a host for each node (hosts already running are left alone)."""
        if len(nodes) > 250:
            raise NixusError("the testbed has room for 250 hosts")
        self._prepare(nixpkgs_lib)
        used = {h.index for h in self.hosts.values()}
        for node in nodes:
            host = self.hosts.get(node)
            if host is not None and host.alive():
                continue
            if host is None:
                index = next(i for i in range(2, 255) if i not in used)
                used.add(index)
                host = self._create(node, index)
                self.hosts[node] = host
            self._start(host)
            self._save()
        for node in nodes:
            _wait_for_ssh(self.hosts[node])
        return [self.hosts[n] for n in nodes]

    def _create(self, node: str, index: int) -> Host:
        d = node_file(self.root / "hosts", node)
        if d.exists():
            _remove_tree(d)
        for sub in ("nix", "root", "home", "var/lib/nixus", "var/log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        _run(["cp", "-a", "/etc", str(d / "etc")])
        etc = d / "etc"
        for old in (etc / "ssh").glob("ssh_host_*"):
            old.unlink()
        shutil.rmtree(etc / "ssh" / "sshd_config.d", ignore_errors=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{node}-host",
              "-f", str(etc / "ssh" / "ssh_host_ed25519_key")])
        address = f"{self.subnet}.{index}"
        (etc / "ssh" / "sshd_config").write_text(SSHD_CONFIG.format(address=address))
        keys = etc / "ssh" / "authorized_keys.d"
        keys.mkdir(exist_ok=True)
        (keys / "root").write_text(Path(str(self.deploy_key) + ".pub").read_text())
        state = etc / "nixus-testbed"
        state.mkdir(exist_ok=True)
        (state / "host.json").write_text(json.dumps({"node": node, "address": address,
                                                     "hostKey": "/etc/ssh/ssh_host_ed25519_key"}))
        shutil.copy(etc / "hosts", state / "hosts.base")
        host_key = (etc / "ssh" / "ssh_host_ed25519_key.pub").read_text().strip()
        return Host(node=node, index=index, address=address, netns=f"nx{self.id}-{node}"[:60],
                    veth=f"nx{self.id}v{index}", dir=str(d), host_key=host_key)

    def _start(self, host: Host) -> None:
        """Network namespace and veth (if missing), then the host's init in a new mount namespace."""
        if _run(["ip", "netns", "pids", host.netns], check=False).returncode != 0:
            _run(["ip", "netns", "add", host.netns])
            _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
            _run(["ip", "link", "set", host.veth, "master", self.bridge, "up"])
            _run(["ip", "-n", host.netns, "address", "add", f"{host.address}/24", "dev", "eth0"])
            _run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        log = open(Path(host.dir) / "host.log", "ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "-m", "--propagation", "private", "--",
             "/bin/sh", "-c", INIT, "init", host.dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        host.pid = proc.pid

    def reboot(self, node: str) -> Host:
        """Stop every process of the host and start it again from its boot entry."""
        host = self._host(node)
        self._kill(host)
        self._start(host)
        self._save()
        _wait_for_ssh(host)
        return host

    def down(self) -> None:
        """Stop every host and remove everything the testbed made (processes, namespaces,
        interfaces, files); safe to call twice or after a failed `up`."""
        for host in list(self.hosts.values()):
            self._kill(host)
            _run(["ip", "netns", "del", host.netns], check=False)
            _run(["ip", "link", "del", host.veth], check=False)
        _run(["ip", "link", "del", self.bridge], check=False)
        self.hosts = {}
        if self.root.exists():
            _remove_tree(self.root)

    def status(self) -> list[dict]:
        return [{**asdict(h), "running": h.alive(), "ssh": _ssh_open(h)} for h in self.hosts.values()]

    def _host(self, node: str) -> Host:
        if node not in self.hosts:
            raise NixusError(f"no test host for node `{node}' (hosts: {', '.join(sorted(self.hosts)) or 'none'})")
        return self.hosts[node]

    def _kill(self, host: Host) -> None:
        """SIGTERM then SIGKILL every process in the host's network namespace."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _netns_pids(host.netns) | ({host.pid} if host.alive() else set())
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and (_netns_pids(host.netns) or host.alive()):
                time.sleep(0.05)
        try:
            os.waitpid(host.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _save(self) -> None:
        data = {"hosts": {n: asdict(h) for n, h in self.hosts.items()}}
        self.state_file.write_text(json.dumps(data, indent=2))

    def fleet_module(self) -> str:
        """A fleet module that points the nodes at their test hosts (addresses, host keys, the
        testbed OS as nixpkgs, the deploy key); forced, as it overrides where the fleet says
        the machines are."""
        public = Path(str(self.deploy_key) + ".pub").read_text().strip()
        nodes = "".join(
            f"        {json.dumps(n)}: {{\"host\": mkForce({json.dumps(h.address)}), \"port\": mkForce(22), "
            f"\"hostKeys\": mkForce([{json.dumps(h.host_key)}]), "
            f"\"nixpkgs\": mkForce(nix.path({json.dumps(str(self.nixpkgs))}))}},\n"
            for n, h in sorted(self.hosts.items()))
        return ("# Generated by `nixus testbed up`: where this fleet's local test hosts are. Do not edit.\n"
                "from nixus_py import nix\n"
                "from nixus_py.evaluate import mkForce\n\n"
                "module = {\n"
                "    \"nodes\": {\n" + nodes + "    },\n"
                f"    \"deploy\": {{\"publicKey\": mkForce({json.dumps(public)}), "
                f"\"identityFile\": mkForce({json.dumps(str(self.deploy_key))})}},\n"
                "}\n")


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NixusError(f"testbed: `{' '.join(cmd)}' failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _netns_pids(netns: str) -> set[int]:
    proc = _run(["ip", "netns", "pids", netns], check=False)
    return {int(p) for p in proc.stdout.split()} if proc.returncode == 0 else set()


def _ssh_open(host: Host) -> bool:
    try:
        with socket.create_connection((host.address, 22), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _wait_for_ssh(host: Host) -> None:
    """Until the host has booted (its boot activation, if any, has finished) and sshd answers."""
    deadline = time.monotonic() + BOOT_WAIT
    while time.monotonic() < deadline:
        if (Path(host.dir) / BOOTED).exists() and _ssh_open(host):
            return
        if not host.alive():
            log = (Path(host.dir) / "host.log").read_text()[-2000:]
            raise NixusError(f"test host {host.node} stopped while starting:\n{log}")
        time.sleep(0.05)
    what = f"sshd did not answer on {host.address}:22" if (Path(host.dir) / BOOTED).exists() \
        else "it did not finish booting"
    raise NixusError(f"test host {host.node}: {what} within {BOOT_WAIT:.0f} s")


def _remove_tree(path: Path) -> None:
    """Remove a host directory, including its read-only store paths."""
    subprocess.run(["chmod", "-R", "u+w", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
