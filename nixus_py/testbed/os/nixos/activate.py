"""switch-to-configuration for the testbed OS: apply a system to the nixus test host it runs on.

Actions as on NixOS: `switch` (activate now and at the next boot), `boot` (at the next boot
only), `test` (activate now only), `dry-activate` (print what would change). The test host
gives each host a private /etc, /run, /root, /home, /var/lib/nixus and /nix, and its own
network namespace; host facts (address, host key) are in /etc/nixus-testbed/host.json.
WireGuard interfaces (networking.wireguard and networking.wg-quick) come up with wireguard-go;
`net.*` sysctls, networking.nat and networking.firewall (nftables, as NixOS's) apply to the
host's network namespace only, and wg-quick's up and down scripts are not run (they are usually
iptables commands that networking.nat and the firewall do here).
Exit status 0 on success, 4 when a service or daemon failed to start (as NixOS does).

For fault-injection tests, an action can be held before or after it runs: while
/etc/nixus-testbed/hold-{before,after}-ACTION exists (at most HOLD_SECONDS), the action waits,
and says so by making held-{before,after}-ACTION next to it (`nixus testbed reboot` meanwhile
is a restart at exactly that point of a switch). The host's boot activation is never held.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SYSTEM = Path(__file__).resolve().parent
STATE = Path("/etc/nixus-testbed")
RUN = Path("/run/nixus")
BOOT_LINK = Path("/nix/var/nixus/boot-system")
VAR = Path("/var/lib/nixus")
FAILED = 4
NAT_TABLE = "nixos-nat"
FIREWALL_TABLE = "nixos-fw"
_INTERFACE = re.compile(r"[A-Za-z0-9_.=+-]{1,15}")
NSD_START_SECONDS = 5.0  # how long nsd may take to load its zones and write its pidfile
HOLD_SECONDS = 120.0  # the longest a test may hold an action (see the top)


class Activation:
    def __init__(self, settings: dict, host: dict, dry: bool):
        self.s, self.host, self.dry = settings, host, dry
        self.failures: list[str] = []
        self.changes: list[str] = []

    def say(self, what: str) -> None:
        self.changes.append(what)
        print(("would " if self.dry else "") + what, flush=True)

    # --- files ---------------------------------------------------------------------------
    def write(self, path: Path, text: str, mode: int = 0o644) -> bool:
        """Write a file when its content differs; True when it changed."""
        if path.exists() and not path.is_symlink() and path.read_text() == text:
            return False
        self.say(f"write {path}")
        if not self.dry:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        return True

    def etc(self) -> None:
        managed_file = STATE / "etc-files.json"
        before = set(json.loads(managed_file.read_text())) if managed_file.exists() else set()
        now = set()
        for e in self.s["etc"]:
            target = Path("/etc") / e["target"]
            now.add(str(target))
            text = e["text"] if e["text"] is not None else Path(e["source"]).read_text()
            mode = 0o444 if e["mode"] in ("symlink", "direct-symlink") else int(e["mode"], 8)
            self.write(target, text, mode)
        for gone in sorted(before - now):
            self.say(f"remove {gone}")
            if not self.dry:
                Path(gone).unlink(missing_ok=True)
        if not self.dry:
            self.write(managed_file, json.dumps(sorted(now)))

    # --- users ---------------------------------------------------------------------------
    def users(self) -> None:
        users, groups = self.s["users"], self.s["groups"]
        passwd = _table("/etc/passwd")
        group = _table("/etc/group")
        shadow = _table("/etc/shadow")
        used_uids = {int(f[2]) for f in passwd.values()}
        used_gids = {int(f[2]) for f in group.values()}
        wanted_groups = {g["name"]: g for g in groups.values()}
        for u in users.values():
            wanted_groups.setdefault(u["group"], {"name": u["group"], "gid": None, "members": []})
            for extra in u["extraGroups"]:
                wanted_groups.setdefault(extra, {"name": extra, "gid": None, "members": []})
        for name, g in sorted(wanted_groups.items()):
            if name not in group:
                gid = g["gid"] if g["gid"] is not None else _free(used_gids, 1000 if name == "users" else 400)
                used_gids.add(gid)
                group[name] = [name, "x", str(gid), ""]
        for name, u in sorted(users.items()):
            fields = passwd.get(name)
            if fields is None:
                uid = u["uid"] if u["uid"] is not None else _free(used_uids, 1000 if u["isNormalUser"] else 400)
                used_uids.add(uid)
                fields = [name, "x", str(uid), group[u["group"]][2], "", u["home"], u["shell"]]
            elif name != "root":
                fields[5], fields[6] = u["home"], u["shell"]
            passwd[name] = fields
            shadow.setdefault(name, [name, "*", "1", "", "", "", "", "", ""])
            for extra in u["extraGroups"]:
                members = [m for m in group[extra][3].split(",") if m]
                if name not in members:
                    group[extra][3] = ",".join(members + [name])
            if u["isNormalUser"] and not self.dry:
                home = Path(u["home"])
                if not home.exists():
                    home.mkdir(parents=True)
                    os.chown(home, int(fields[2]), int(fields[3]))
        managed_file = STATE / "users.json"
        before = set(json.loads(managed_file.read_text())) if managed_file.exists() else set()
        for gone in sorted(before - set(users)):
            if gone != "root":
                passwd.pop(gone, None)
                shadow.pop(gone, None)
                self.say(f"remove user {gone}")
        self.write(Path("/etc/passwd"), _render(passwd))
        self.write(Path("/etc/group"), _render(group))
        self.write(Path("/etc/shadow"), _render(shadow), 0o640)
        if not self.dry:
            self.write(managed_file, json.dumps(sorted(users)))
        keys_dir = Path("/etc/ssh/authorized_keys.d")
        wanted = {name: "".join(k + "\n" for k in u["keys"] if k.strip()) for name, u in users.items()}
        for old in sorted(keys_dir.glob("*")) if keys_dir.exists() else []:
            if old.name not in wanted or not wanted[old.name]:
                self.say(f"remove authorized keys of {old.name}")
                if not self.dry:
                    old.unlink()
        for name, text in sorted(wanted.items()):
            if text:
                self.write(keys_dir / name, text, 0o444)

    def known_hosts(self) -> None:
        lines = [f"{','.join(h['hostNames'])} {h['publicKey']}\n" for h in self.s["knownHosts"] if h["hostNames"]]
        self.write(Path("/etc/ssh/ssh_known_hosts"), "".join(lines))
        managed = "".join(f"{ip} {' '.join(names)}\n" for ip, names in sorted(self.s["hosts"].items()))
        base = Path("/etc/nixus-testbed/hosts.base")
        if base.exists():
            self.write(Path("/etc/hosts"), base.read_text() + managed)

    # --- daemons -------------------------------------------------------------------------
    def sshd(self) -> None:
        ssh = self.s["ssh"]
        pidfile = Path("/run/sshd.pid")
        if not ssh["enable"]:
            if _running(pidfile):
                self.say("stop sshd")
                if not self.dry:
                    _stop(pidfile)
            return
        settings = {"PermitRootLogin": "prohibit-password", "PasswordAuthentication": False, **ssh["settings"]}
        lines = [f"Port {p}" for p in ssh["ports"]]
        lines += [f"ListenAddress {self.host['address']}", f"HostKey {self.host['hostKey']}", f"PidFile {pidfile}",
                  "AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u", "UsePAM no", "StrictModes no",
                  "Subsystem sftp internal-sftp", "MaxStartups 100:30:200", "MaxSessions 50"]
        lines += [f"{k} {_sshd_value(v)}" for k, v in sorted(settings.items())]
        text = "\n".join(lines) + "\n" + ssh["extraConfig"]
        changed = self.write(Path("/etc/ssh/sshd_config"), text)
        if self.dry:
            return
        Path("/run/sshd").mkdir(exist_ok=True)
        check = subprocess.run(["/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"], capture_output=True, text=True)
        if check.returncode != 0:
            self.failures.append(f"sshd configuration rejected: {check.stderr.strip()}")
            return
        if _running(pidfile):
            if changed:
                # SIGHUP makes sshd re-execute with the new configuration; open sessions stay.
                self.say("reload sshd")
                os.kill(_pid(pidfile), signal.SIGHUP)
        else:
            self.say("start sshd")
            r = subprocess.run(["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config", "-E", "/var/log/sshd.log"])
            if r.returncode != 0:
                self.failures.append("sshd failed to start")

    def wireguard(self) -> None:
        wanted = {**self.s["wireguard"], **self.s["wgQuick"]}
        for name in sorted(set(self.s["wireguard"]) & set(self.s["wgQuick"])):
            self.failures.append(f"wireguard interface {name}: set by networking.wireguard and networking.wg-quick")
        for name, i in sorted(self.s["wgQuick"].items()):
            scripts = [s for s in ("preUp", "postUp", "preDown", "postDown") if i[s]]
            if scripts:
                self.say(f"skip {', '.join(scripts)} of {name}: a test host runs no wg-quick scripts")
        managed_file = STATE / "wireguard.json"
        before = set(json.loads(managed_file.read_text())) if managed_file.exists() else set()
        for gone in sorted(before - set(wanted)):
            self.say(f"remove interface {gone}")
            if not self.dry:
                subprocess.run(["ip", "link", "del", gone], capture_output=True)
        for name, i in sorted(wanted.items()):
            self.say(f"configure interface {name}")
            if self.dry:
                continue
            try:
                self._wg_interface(name, i)
            except (OSError, subprocess.CalledProcessError) as e:
                err = getattr(e, "stderr", "") or ""
                self.failures.append(f"wireguard interface {name}: {e} {err}".strip())
        if not self.dry:
            self.write(managed_file, json.dumps(sorted(wanted)))

    def _wg_interface(self, name: str, i: dict) -> None:
        if subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0:
            # wireguard-go refuses to run on Linux unless told that userspace is wanted.
            subprocess.run(["wireguard-go", name], check=True, capture_output=True, text=True,
                           env={**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"})
        key = i["privateKey"] if i["privateKey"] else Path(i["privateKeyFile"]).read_text().strip()
        conf = [f"[Interface]\nPrivateKey = {key}\n"]
        if i["listenPort"]:
            conf.append(f"ListenPort = {i['listenPort']}\n")
        for p in i["peers"]:
            conf.append(f"\n[Peer]\nPublicKey = {p['publicKey']}\nAllowedIPs = {', '.join(p['allowedIPs'])}\n")
            if p["endpoint"]:
                conf.append(f"Endpoint = {p['endpoint']}\n")
            if p["persistentKeepalive"]:
                conf.append(f"PersistentKeepalive = {p['persistentKeepalive']}\n")
            if p["presharedKeyFile"]:
                conf.append(f"PresharedKey = {Path(p['presharedKeyFile']).read_text().strip()}\n")
        conf_file = RUN / f"wg-{name}.conf"
        RUN.mkdir(parents=True, exist_ok=True)
        fd = os.open(conf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(conf))
        try:
            subprocess.run(["wg", "setconf", name, str(conf_file)], check=True, capture_output=True, text=True)
        finally:
            conf_file.unlink()
        subprocess.run(["ip", "address", "flush", "dev", name], check=True, capture_output=True)
        for ip in i["ips"]:
            subprocess.run(["ip", "address", "add", ip, "dev", name], check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
        for p in i["peers"]:
            for net in p["allowedIPs"]:
                if net in ("0.0.0.0/0", "::/0"):
                    continue  # a test host keeps its own default route
                subprocess.run(["ip", "route", "replace", net, "dev", name], check=True, capture_output=True)

    def sysctl(self) -> None:
        """The kernel settings of the host's network namespace (`net.*`): the others are the
        machine's, which a test host leaves alone."""
        for key, value in sorted(self.s["sysctl"].items()):
            if not key.startswith("net."):
                continue
            path = Path("/proc/sys") / _sysctl_path(key)
            text = "1" if value is True else "0" if value is False else str(value)
            try:
                if path.read_text().strip() == text:
                    continue
                self.say(f"set {key} = {text}")
                if not self.dry:
                    path.write_text(text + "\n")
            except OSError as e:
                self.failures.append(f"sysctl {key}: {e.strerror}")

    def nat(self) -> None:
        """networking.nat: masquerading of what leaves through the external interface from the
        internal ones, in an nftables table of the host's own network namespace."""
        nat = self.s["nat"]
        internal, external = nat["internalInterfaces"], nat["externalInterface"]
        if not self._interfaces("networking.nat", internal + ([external] if external else [])):
            return
        out = f' oifname "{external}"' if external else ""
        rules = "".join(f'    iifname "{i}"{out} masquerade\n' for i in internal) if nat["enable"] else ""
        self._nft("networking.nat", f"ip {NAT_TABLE}", "chain post {\n    type nat hook postrouting priority srcnat;\n",
                  rules)

    def firewall(self) -> None:
        """networking.firewall, as NixOS's: what comes in is dropped unless it answers what went
        out, comes over loopback or a trusted interface, is a ping, or is for an allowed port
        (sshd's too, with services.openssh.openFirewall); in the host's own network namespace."""
        fw = self.s["firewall"]
        if not self._interfaces("networking.firewall.trustedInterfaces", fw["trustedInterfaces"]):
            return
        rules = ""
        if fw["enable"]:
            accept = ['iifname "lo"', "ct state established,related"]
            accept += [f'iifname "{i}"' for i in fw["trustedInterfaces"]]
            accept += ["icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert }"]
            if fw["allowPing"]:
                accept += ["icmp type echo-request", "icmpv6 type echo-request"]
            for proto, ports in (("tcp", fw["allowedTCPPorts"] + fw["sshPorts"]), ("udp", fw["allowedUDPPorts"])):
                if ports:
                    accept.append(f"{proto} dport {{ {', '.join(str(p) for p in sorted(set(ports)))} }}")
            rules = "".join(f"    {a} accept\n" for a in accept)
        self._nft("networking.firewall", f"inet {FIREWALL_TABLE}",
                  "chain input {\n    type filter hook input priority filter; policy drop;\n", rules)

    def _interfaces(self, option: str, names: list[str]) -> bool:
        """Whether every name is an interface name (else a failure of `option`)."""
        bad = [i for i in names if not _INTERFACE.fullmatch(i)]
        if bad:
            self.failures.append(f"{option}: `{bad[0]}' is no interface name")
        return not bad

    def _nft(self, option: str, table: str, chain: str, rules: str) -> None:
        """The nftables table `table` (family and name) with one chain of `rules`, or no table
        without rules; changed only when it differs from the last one applied."""
        text = f"table {table} {{\n  {chain}{rules}  }}\n}}\n" if rules else ""
        state = STATE / f"{table.split()[1]}.nft"  # kept as long as the namespace, over reboots
        if (state.read_text() if state.exists() else "") == text:
            return
        self.say(f"configure {option}" if rules else f"remove {option}")
        if self.dry:
            return
        # Made and removed in one transaction: the table is declared first so that it can be deleted.
        r = subprocess.run(["nft", "-f", "-"], input=f"table {table}\ndelete table {table}\n{text}",
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.failures.append(f"{option}: {r.stderr.strip()}")
            return
        state.write_text(text)

    def nsd(self) -> None:
        nsd = self.s["nsd"]
        pidfile = Path("/run/nsd.pid")
        base = VAR / "nsd"
        if not nsd["enable"]:
            if _running(pidfile):
                self.say("stop nsd")
                if not self.dry:
                    _stop(pidfile)
            return
        conf = ["server:", f"  pidfile: {pidfile}", f"  zonesdir: {base}", "  username: \"\"",
                "  database: \"\"", f"  port: {nsd['port']}", "  xfrdfile: \"\"", f"  xfrdir: {base}/xfr",
                "  zonelistfile: \"\"", "  verbosity: 1"]
        conf += [f"  ip-address: {self.host['address'] if a in ('0.0.0.0', '::') else a}"
                 for a in dict.fromkeys(nsd["interfaces"]) if a != "::"]
        changed = False
        for zone, z in sorted(nsd["zones"].items()):
            name = zone.rstrip(".")
            conf += ["", "zone:", f"  name: {zone}"]
            if z["requestXFR"]:
                conf.append(f"  zonefile: {name}.secondary.zone")
            else:
                conf.append(f"  zonefile: {name}.zone")
                changed |= self.write(base / f"{name}.zone", z["data"])
            conf += [f"  notify: {x}" for x in z["notify"]]
            conf += [f"  provide-xfr: {x}" for x in z["provideXFR"] if x]
            conf += [f"  request-xfr: {x}" for x in z["requestXFR"]]
            conf += [f"  allow-notify: {x}" for x in z["allowNotify"]]
        changed |= self.write(base / "nsd.conf", "\n".join(conf) + "\n")
        if self.dry:
            return
        (base / "xfr").mkdir(parents=True, exist_ok=True)
        if _running(pidfile):
            if not changed:
                return
            self.say("restart nsd")
            _stop(pidfile)
        else:
            self.say("start nsd")
        r = subprocess.run(["nsd", "-c", str(base / "nsd.conf")], capture_output=True, text=True)
        if r.returncode != 0 or not _started(pidfile, NSD_START_SECONDS):
            self.failures.append(f"nsd failed to start: {r.stderr.strip()}")

    def services(self) -> None:
        wanted = self.s["services"]
        sdir = RUN / "services"
        running = {p.stem: p for p in sdir.glob("*.hash")} if sdir.exists() else {}
        for name in sorted(running):
            if name not in wanted or (sdir / f"{name}.hash").read_text() != wanted[name]["hash"]:
                self.say(f"stop service {name}")
                if not self.dry:
                    _stop(sdir / f"{name}.pid")
                    (sdir / f"{name}.hash").unlink()
        for name, svc in sorted(wanted.items()):
            if (sdir / f"{name}.hash").exists():
                continue
            self.say(f"start service {name}")
            if not self.dry:
                self._start_service(sdir, name, svc)

    def _start_service(self, sdir: Path, name: str, svc: dict) -> None:
        sdir.mkdir(parents=True, exist_ok=True)
        command = svc["execStart"] or svc["script"]
        log_path = Path("/var/log/nixus") / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **svc["environment"]}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        if svc["type"] == "oneshot":
            code = proc.wait()
        else:
            # A simple service counts as started when it is still running a moment later.
            time.sleep(1.0)
            code = proc.poll()
        if code not in (None, 0):
            self.failures.append(f"service {name} failed (exit status {code}); see {log_path}")
            return
        (sdir / f"{name}.pid").write_text(str(proc.pid))
        (sdir / f"{name}.hash").write_text(svc["hash"])


def _sysctl_path(key: str) -> str:
    """The file below /proc/sys of a sysctl key, as sysctl.d(5) reads it: dots separate, and a
    slash stands for a dot in a name (`net.ipv4.conf.eth0/100.forwarding`), unless the key is
    already written with slashes."""
    return key if "/" in key.split(".")[0] else key.translate(str.maketrans("./", "/."))


def _table(path: str) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in Path(path).read_text().splitlines() if line}


def _render(table: dict[str, list[str]]) -> str:
    return "".join(":".join(f) + "\n" for f in table.values())


def _free(used: set[int], start: int) -> int:
    n = start
    while n in used:
        n += 1
    return n


def _sshd_value(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)


def _pid(pidfile: Path) -> int:
    """The pid a pidfile names (ValueError while the daemon has created it but not written it yet)."""
    words = pidfile.read_text().split()
    if not words:
        raise ValueError(f"{pidfile} is empty")
    return int(words[0])


def _running(pidfile: Path) -> bool:
    try:
        os.kill(_pid(pidfile), 0)
        return True
    except (OSError, ValueError):
        return False


def _started(pidfile: Path, seconds: float) -> bool:
    """Whether a daemon that forked into the background is running within `seconds`: its
    pidfile names a live process (it writes the file once it has started)."""
    deadline = time.monotonic() + seconds
    while not _running(pidfile):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _stop(pidfile: Path) -> None:
    try:
        pid = _pid(pidfile)
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.05)
    except (OSError, ValueError):
        pass
    pidfile.unlink(missing_ok=True)


def hold(when: str, action: str) -> None:
    """Wait while a test holds the action at this point (see the top)."""
    if os.environ.get("NIXUS_TESTBED_BOOTING"):  # the host's own boot is never held
        return
    held, marker = STATE / f"hold-{when}-{action}", STATE / f"held-{when}-{action}"
    deadline = time.monotonic() + HOLD_SECONDS
    while held.exists() and time.monotonic() < deadline:
        marker.touch()
        time.sleep(0.05)
    marker.unlink(missing_ok=True)


def activate(action: str) -> int:
    hold("before", action)
    code = run_action(action)
    hold("after", action)
    return code


def run_action(action: str) -> int:
    if action in ("switch", "boot"):
        BOOT_LINK.parent.mkdir(parents=True, exist_ok=True)
        tmp = BOOT_LINK.with_name(".boot-system.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(SYSTEM)
        os.replace(tmp, BOOT_LINK)
        if action == "boot":
            print(f"the next boot starts {SYSTEM}")
            return 0
    settings = json.loads((SYSTEM / "settings.json").read_text())
    host = json.loads((STATE / "host.json").read_text())
    a = Activation(settings, host, dry=action == "dry-activate")
    for step in (a.etc, a.users, a.known_hosts, a.sshd, a.wireguard, a.sysctl, a.nat, a.firewall, a.nsd, a.services):
        step()
    if action == "dry-activate":
        return 0
    current = Path("/run/current-system")
    tmp = Path("/run/.current-system.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(SYSTEM)
    os.replace(tmp, current)
    for f in a.failures:
        print(f"error: {f}", file=sys.stderr)
    return FAILED if a.failures else 0


def main() -> int:
    actions = ("switch", "boot", "test", "dry-activate")
    if len(sys.argv) != 2 or sys.argv[1] not in actions:
        print(f"usage: switch-to-configuration {{{','.join(actions)}}}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("switch-to-configuration must run as root", file=sys.stderr)
        return 1
    return activate(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
