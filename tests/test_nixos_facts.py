"""What nixus reads of a node's NixOS configuration before NixOS does: Nixus's
`networking.public.*` and `secrets.files.*`, wherever the configuration defines them (data, a
function, a file it imports), and what NixOS then sees of them."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import eval_rendered, run_nixus
from testbed_fixture import TestbedFleet, require_testbed_tools, testbed_fleet  # noqa: F401 - the fixture

pytestmark = pytest.mark.nix

SECRET = "s3cret-never-in-the-store\n"

# A Nixus fleet as Nixus's own example lays it out: the node's configuration is a file, which
# imports a hardware configuration that needs `modulesPath` (only NixOS has it).
CONFIGURATION = """\
{ lib, pkgs, config, modulesPath, ... }: {
  imports = [ ./hardware-configuration.nix ];
  users.users.bob = { group = "users"; isNormalUser = true; };
  secrets.files.foo.file = ./secret;
  secrets.files.foo.user = "bob";
  environment.etc.foo-path.text = config.secrets.files.foo.file;
  networking.public.ipv4 = "192.0.2.7";
}
"""
HARDWARE = """\
{ config, lib, pkgs, modulesPath, ... }: {
  imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];
  networking.hostName = lib.mkDefault "foo";
}
"""
FLEET = """\
{
  nodes.foo = { host = "root@10.0.0.1"; configuration = ./configuration.nix; };
  nodes.bar = {
    host = "root@10.0.0.2";
    configuration = { lib, ... }: {
      secrets.files.key = { file = ./secret; group = "wheel"; };
      networking.public.ipv6 = lib.mkDefault "2001:db8::2";
    };
  };
}
"""


def _fleet(directory: Path, fleet: str = FLEET) -> None:
    (directory / "fleet.nix").write_text(fleet)
    (directory / "configuration.nix").write_text(CONFIGURATION)
    (directory / "hardware-configuration.nix").write_text(HARDWARE)
    (directory / "secret").write_text(SECRET)


def _facts(directory: Path, code: str) -> object:
    """What `code` (reading `nodes`, a node's `configuration` by name) computes in the fleet."""
    script = textwrap.dedent(f"""\
        import json, sys
        from nixus_py.fleet.evaluate import evaluate_fleet
        from nixus_py.fleet.nixos_facts import nixos_option
        nodes = evaluate_fleet("fleet.nix").config["nodes"]
        print(json.dumps({code}))
        """)
    proc = subprocess.run(["python", "-c", script], cwd=directory, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_secrets_files_become_secrets_that_nixus_delivers(tmp_path: Path) -> None:
    _fleet(tmp_path)
    r = run_nixus("eval", "--json", "nodes", cwd=tmp_path)
    assert r.code == 0, r.err
    nodes = json.loads(r.out)
    assert {n: {k: {f: s[f] for f in ("source", "path", "user", "group", "mode")} for k, s in nodes[n]["secrets"].items()}
            for n in ("foo", "bar")} == {
        "foo": {"foo": {"source": str(tmp_path / "secret"), "path": "/var/lib/nixus/secrets/foo",
                        "user": "bob", "group": "root", "mode": "0400"}},
        "bar": {"key": {"source": str(tmp_path / "secret"), "path": "/var/lib/nixus/secrets/key",
                        "user": "root", "group": "wheel", "mode": "0440"}},
    }


def test_public_addresses_are_read_from_the_configuration(tmp_path: Path) -> None:
    _fleet(tmp_path)
    facts = _facts(tmp_path, "{n: [nixos_option(nodes[n]['configuration'], ('networking', 'public', k), None) "
                             "for k in ('ipv4', 'ipv6', 'hasIpv4', 'hasIpv6')] for n in ('foo', 'bar')}")
    assert facts == {"foo": ["192.0.2.7", None, True, False], "bar": [None, "2001:db8::2", False, True]}


def test_an_undefined_public_address_is_an_error_naming_the_option(tmp_path: Path) -> None:
    _fleet(tmp_path)
    script = ("from nixus_py.fleet.evaluate import evaluate_fleet\nfrom nixus_py.fleet.nixos_facts import nixos_option\n"
              "nixos_option(evaluate_fleet('fleet.nix').config['nodes']['bar']['configuration'], "
              "('networking', 'public', 'ipv4'))\n")
    proc = subprocess.run(["python", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "`nodes.bar.configuration.networking.public.ipv4' was accessed but has no value defined" in proc.stderr


def test_a_secret_with_both_a_user_and_a_group_is_refused(tmp_path: Path) -> None:
    _fleet(tmp_path, FLEET.replace('group = "wheel";', 'group = "wheel"; user = "bob";'))
    r = run_nixus("plan", cwd=tmp_path)
    assert r.code == 1 and "Traceback" not in r.err
    assert "`nodes.bar.configuration.secrets.files.key' sets both a user and a group" in r.err
    assert "fleet.nix:" in r.err


def test_nixos_sees_where_the_secret_is_and_the_store_never_holds_it(tmp_path: Path) -> None:
    """The rendered module declares Nixus's options for NixOS: the secret's `file` is where nixus
    puts it on the node, and the rendered files hold neither the secret nor its content."""
    _fleet(tmp_path)
    (tmp_path / "hardware-configuration.nix").write_text("{ networking.hostName = \"foo\"; }\n")
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    assert eval_rendered(tmp_path / "out" / "foo.nix", "environment.etc.foo-path.text") == "/var/lib/nixus/secrets/foo"
    public = {k: eval_rendered(tmp_path / "out" / "foo.nix", f"networking.public.{k}") for k in ("ipv4", "hasIpv4", "hasIpv6")}
    assert public == {"ipv4": "192.0.2.7", "hasIpv4": True, "hasIpv6": False}
    assert not any(SECRET.strip() in p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())


@pytest.mark.root
@pytest.mark.slow
def test_a_nixus_secret_reaches_its_owner_and_not_the_store(testbed_fleet: TestbedFleet) -> None:
    tb = testbed_fleet
    require_testbed_tools()
    _fleet(tb.dir, "{ lib, ... }: {\n"
                   "  imports = lib.optional (builtins.pathExists ./testbed-hosts.py) ./testbed-hosts.py;\n"
                   "  nodes.foo.configuration = ./configuration.nix;\n}\n")
    (tb.dir / "hardware-configuration.nix").write_text("{ }\n")
    assert tb.nixus("testbed", "up").code == 0
    r = tb.nixus("deploy")
    assert r.code == 0, r.out + r.err
    where = tb.ssh("root", "foo", "cat /etc/foo-path").stdout.strip()
    assert where == "/var/lib/nixus/secrets/foo"
    owner = tb.ssh("root", "foo", f"stat -c %U:%a {where}; cat {where}").stdout
    assert owner == "bob:400\n" + SECRET
    leaked = tb.ssh("root", "foo", f"grep -rl {SECRET.strip()} /nix/store || true").stdout
    assert leaked == ""


READS = """\
{ config, lib, ... }: {
  options.endpoints = lib.mkOption { type = lib.types.listOf lib.types.str; };
  config = {
    nodes.a.configuration = { config, ... }: { networking.public.ipv4 = "192.0.2.1"; networking.hostName = "a"; };
    nodes.b.configuration = ./b.nix;
    endpoints = [ config.nodes.a.configuration.networking.public.ipv4 READ ];
  };
}
"""
B_NIX = ('{ config, ... }: { secrets.files.x = { file = ./b.nix; user = "u-${config.networking.public.ipv6}"; };\n'
         '  networking.public.ipv6 = "2001:db8::1"; }\n')


@pytest.mark.parametrize("read,expected", [
    ("(lib.boolToString config.nodes.b.configuration.networking.public.hasIpv4)", "false"),
    ("config.nodes.b.configuration.secrets.files.x.user", "u-2001:db8::1"),
])
def test_fleet_nix_code_reads_what_nixus_reads_of_a_configuration(tmp_path: Path, read: str, expected: str) -> None:
    """As Nixus modules do (`config.nodes.<server>.configuration.networking.public.ipv4`)."""
    (tmp_path / "fleet.nix").write_text(READS.replace("READ", read))
    (tmp_path / "b.nix").write_text(B_NIX)
    r = run_nixus("eval", "--json", "endpoints", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out) == ["192.0.2.1", expected]


def test_reading_another_option_of_a_configuration_says_it_is_for_nixos(tmp_path: Path) -> None:
    (tmp_path / "fleet.nix").write_text(READS.replace("READ", "config.nodes.a.configuration.networking.hostName"))
    (tmp_path / "b.nix").write_text(B_NIX)
    r = run_nixus("eval", "endpoints", cwd=tmp_path)
    assert r.code == 1 and "Traceback" not in r.err
    assert ("`nodes.a.configuration.networking.hostName' is for NixOS to evaluate: of a node's configuration, "
            "nixus reads only networking.public and secrets.files") in r.err
    assert "fleet.nix:6" in r.err
