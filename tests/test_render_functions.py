"""A fleet.nix whose node configurations are Nix functions (as most Nixus fleets are) renders, and
each rendered node, evaluated by the real module system, gets exactly what the functions give it:
their closures, NixOS's own module arguments, and the fleet's config as nixus evaluated it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import eval_rendered, nixpkgs_lib, run_nixus
from nixus_py.nixlang import NixPath
from nixus_py.testbed.hosts import TESTBED_OS

pytestmark = pytest.mark.nix

FLEET = """\
{ config, lib, ... }:
let motd = "closure sees ${config.nodes.b.address}"; in {
  imports = [ ./more.nix ];
  defaults = { name, ... }: {
    configuration = { config, ... }: {
      environment.etc.from-defaults.text = "${name} is ${config.networking.hostName}";
    };
  };
  nodes.a = {
    host = "10.0.0.1";
    configuration = { lib, ... }: {
      environment.etc.motd.text = lib.mkForce motd;
      networking.hostName = "alpha";
    };
  };
  nodes.b = { name, config, ... }: {
    host = "root@10.0.0.2";
    configuration = lib.mkMerge [
      (lib.mkIf true ({ ... }: { environment.etc.b.text = "${name} at ${config.address}"; }))
    ];
  };
}
"""

MORE = """\
{ config, ... }: {
  nodes.c.host = "10.0.0.3";
  nodes.c.configuration = { pkgs, ... }: {
    environment.etc.c.text = toString (builtins.attrNames config.nodes);
  };
}
"""


def _etc(module: Path) -> dict[str, str]:
    return {name: e["text"] for name, e in eval_rendered(module, "environment.etc").items()}


def test_function_configurations_render_to_what_the_functions_give(tmp_path: Path) -> None:
    (tmp_path / "fleet.nix").write_text(FLEET)
    (tmp_path / "more.nix").write_text(MORE)
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    out = tmp_path / "out"
    assert _etc(out / "a.nix") == {"from-defaults": "a is alpha", "motd": "closure sees 10.0.0.2"}
    assert _etc(out / "b.nix") == {"from-defaults": "b is nixos", "b": "b at 10.0.0.2"}
    assert _etc(out / "c.nix") == {"from-defaults": "c is nixos", "c": "a b c"}
    # Each function is named by where the fleet defined it.
    assert "# fleet.nix:11\n" in (out / "a.nix").read_text()
    assert "# more.nix:3\n" in (out / "c.nix").read_text()


def test_a_fleet_value_nixus_cannot_pass_on_fails_the_node_with_nixus_s_reason(tmp_path: Path) -> None:
    """A node's configuration is no data that nixus could hand to another node's function."""
    (tmp_path / "fleet.nix").write_text(textwrap.dedent("""\
        { config, ... }: {
          nodes.a.configuration = { ... }: {
            environment.etc.x.text = builtins.toJSON config.nodes.b.configuration;
          };
          nodes.b = { };
        }
        """))
    assert run_nixus("render", "-o", "out", cwd=tmp_path).code == 0
    expr = (f"(import {NixPath(f'{TESTBED_OS}/lib/eval-config.nix').nix()} {{ lib = import "
            f"{NixPath(str(nixpkgs_lib())).nix()}; system = \"x86_64-linux\"; modules = [ "
            f"{NixPath(str(tmp_path / 'out' / 'a.nix')).nix()} ]; }}).config.environment.etc.x.text")
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "-E", expr], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "was not known when nixus rendered the node" in proc.stderr, proc.stderr
