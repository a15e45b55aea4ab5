"""The bundled ssh access module: grants become authorised keys and known hosts; bad grants fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_nixus

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw"
FLEET = f'''\
modules = [{{
    "nodes": {{"laptop": {{}}, "web1": {{"hostKeys": ["{KEY} web1-host"]}}, "off": {{"enable": False}}}},
    "deploy": {{"publicKey": "{KEY} deployer"}},
    "ssh": {{"access": {{"laptop": {{"keys": {{"alice": {{
        "publicKey": "{KEY} alice",
        "hasAccessTo": {{"web1": {{"root": True}}}},
    }}}}}}}}}},
}}]
'''


def _render(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    (tmp_path / "fleet.py").write_text(text)
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    return r.code, r.err, tmp_path / "out"


def test_grant_authorises_key_on_target_and_trusts_host_key_on_source(tmp_path: Path) -> None:
    code, err, out = _render(tmp_path, FLEET)
    assert code == 0, err
    web1 = (out / "web1.nix").read_text()
    assert f'"{KEY} alice"  # ssh.access.laptop.keys.alice.hasAccessTo.web1.root (fleet.py:6)' in web1
    laptop = (out / "laptop.nix").read_text()
    assert "programs.ssh.knownHosts.web1" in laptop and f'publicKey = "{KEY} web1-host";' in laptop
    assert "alice" not in laptop.split("authorizedKeys")[-1]


def test_deploy_key_is_authorised_for_the_deploy_user_everywhere(tmp_path: Path) -> None:
    code, err, out = _render(tmp_path, FLEET.replace('"laptop": {}', '"laptop": {"user": "ops"}'))
    assert code == 0, err
    assert "users.users.ops.openssh.authorizedKeys.keys" in (out / "laptop.nix").read_text()
    for node in ("web1", "off"):
        assert f"{KEY} deployer" in (out / f"{node}.nix").read_text()


def test_grant_to_unknown_node_is_an_error_naming_the_line(tmp_path: Path) -> None:
    code, err, _ = _render(tmp_path, FLEET.replace('"hasAccessTo": {"web1"', '"hasAccessTo": {"web9"'))
    assert code == 1
    assert "`ssh.access.laptop.keys.alice.hasAccessTo.web9' names the node `web9', but there is no such node" in err
    assert "fleet.py:6" in err


def test_a_key_on_a_machine_nixus_does_not_deploy_still_gets_its_access(tmp_path: Path) -> None:
    """As in Nixus: a phone that is no node, or a laptop listed as a disabled node."""
    for source, nodes in (("phone", FLEET), ("laptop", FLEET.replace('"laptop": {}', '"laptop": {"enable": False}'))):
        code, err, out = _render(tmp_path, nodes.replace('"access": {"laptop"', f'"access": {{"{source}"'))
        assert code == 0, err
        assert f'"{KEY} alice"  # ssh.access.{source}.keys.alice.hasAccessTo.web1.root' in (out / "web1.nix").read_text()


def test_grant_to_disabled_node_is_an_error(tmp_path: Path) -> None:
    code, err, _ = _render(tmp_path, FLEET.replace('"hasAccessTo": {"web1"', '"hasAccessTo": {"off"'))
    assert code == 1 and "grants access to the node `off', which is disabled" in err


def test_malformed_public_key_is_a_type_error(tmp_path: Path) -> None:
    code, err, _ = _render(tmp_path, FLEET.replace(f'"{KEY} alice"', '"ssh-ed25519 not-base64!"'))
    assert code == 1
    assert "ssh.access.laptop.keys.alice.publicKey' is not of type `SSH public key" in err
    assert "fleet.py:5" in err


# Keys that name their type and decode, but hold no key (asyncssh refused them when the deploy
# reached the host, with a traceback that ended every host's deploy): the type alone, an Ed25519
# key a byte short, an RSA key with its exponent and no modulus, an ECDSA point off its curve.
NO_KEY = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAHwECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
          "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB",
          "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA" + "A" * 85 + "="]


@pytest.mark.parametrize("option,line,fleet", [
    ("nodes.web1.hostKeys", 2, lambda bad: FLEET.replace(f'"{KEY} web1-host"', f'"{bad}"')),
    ("nodes.web1.hostKeys", 2, lambda bad: FLEET.replace(f'"{KEY} web1-host"', f'"192.0.2.1 {bad}"')),  # keyscan
    ("ssh.access.web1.hostKeys.ed25519", 4, lambda bad: FLEET.replace(
        '"ssh": {"access": {"laptop": {', f'"ssh": {{"access": {{"web1": {{"hostKeys": {{"ed25519": "{bad}"}}}}, "laptop": {{')),
    ("ssh.access.laptop.keys.alice.publicKey", 5, lambda bad: FLEET.replace(f'"{KEY} alice"', f'"{bad}"')),
    ("deploy.publicKey", 3, lambda bad: FLEET.replace(f'"{KEY} deployer"', f'"{bad}"')),
])
@pytest.mark.parametrize("bad", NO_KEY, ids=["type-only", "ed25519-short", "rsa-no-modulus", "ecdsa-off-curve"])
def test_every_option_that_takes_an_ssh_key_refuses_a_blob_that_holds_no_key(
        tmp_path: Path, option: str, line: int, fleet, bad: str) -> None:
    code, err, out = _render(tmp_path, fleet(bad))
    assert code == 1 and "Traceback" not in err, err
    assert f"{option}" in err and "is not of type" in err and f"fleet.py:{line}" in err, err
    assert not list(out.rglob("*.nix"))


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_keys_of_every_type_ssh_keygen_makes_are_taken_as_host_and_user_keys(tmp_path: Path) -> None:
    keys = []
    for i, kind in enumerate([["ed25519"], ["rsa", "-b", "2048"], ["ecdsa", "-b", "256"], ["ecdsa", "-b", "384"],
                              ["ecdsa", "-b", "521"]]):
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", *kind, "-f", str(tmp_path / f"k{i}")], check=True)
        keys.append((tmp_path / f"k{i}.pub").read_text())  # as a .pub file has it: comment, final newline
    fleet = FLEET.replace(f'["{KEY} web1-host"]', repr(keys)).replace(f'"{KEY} alice"', repr(keys[-1]))
    code, err, out = _render(tmp_path, fleet)
    assert code == 0, err
    assert all(k.split()[1] in (out / "laptop.nix").read_text() for k in keys)


def test_a_granted_user_that_is_no_user_name_is_an_error(tmp_path: Path) -> None:
    """The name becomes a passwd entry and a file name on the target."""
    code, err, _ = _render(tmp_path, FLEET.replace('{"root": True}', '{"../../etc/x": True}'))
    assert code == 1 and "Traceback" not in err
    assert 'ssh.access.laptop.keys.alice.hasAccessTo.web1."../../etc/x"\' is not a user name' in err
    assert "fleet.py:6" in err


def test_an_extra_host_name_that_would_name_other_hosts_is_an_error(tmp_path: Path) -> None:
    code, err, _ = _render(tmp_path, FLEET.replace('"ssh": {"access": {"laptop": {',
                                                   '"ssh": {"access": {"web1": {"hostNames": ["web1,*"]}, "laptop": {'))
    assert code == 1 and "ssh.access.web1.hostNames.\"[definition 1-entry 1]\"' is not of type" in err, err
