"""`nixus render`: one deterministic NixOS module per node that the real module system accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, nixpkgs_lib, run_nixus

pytestmark = pytest.mark.nix

# Test-local declarations of the NixOS options the example uses, with NixOS's types.
NIXOS_STUB = """
{ lib, ... }: {
  options.networking.hostName = lib.mkOption { type = lib.types.str; default = "nixos"; };
  options.environment.etc = lib.mkOption {
    type = lib.types.attrsOf (lib.types.submodule { options.text = lib.mkOption { type = lib.types.lines; }; });
    default = { };
  };
  options.services.nginx.package = lib.mkOption { type = lib.types.raw; default = null; };
}
"""


def test_render_is_deterministic_and_names_origins(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_nixus("render", "-o", str(a), cwd=EXAMPLES).code == 0
    assert run_nixus("render", "-o", str(b), cwd=EXAMPLES).code == 0
    files = sorted(p.name for p in a.iterdir())
    assert files == ["gw.nix", "ns1.nix", "ns2.nix", "web1.nix", "web2.nix"]
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    web2 = (a / "web2.nix").read_text()
    assert "# fleet.py:10" in web2 and "# fleet.py:22" in web2
    assert 'environment.etc.upstream.text = "10.0.0.11:80\\n";' in web2


def test_rendered_nodes_evaluate_with_the_real_module_system(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_nixus("render", "-o", str(out), cwd=EXAMPLES).code == 0
    stub = tmp_path / "nixos-stub.nix"
    stub.write_text(NIXOS_STUB)
    lib = nixpkgs_lib()
    for node in ("gw", "web2"):
        expr = (f"let lib = import {lib}; ev = lib.evalModules {{ modules = [ {stub} {out / (node + '.nix')} ]; "
                f"specialArgs.pkgs = {{ nginxMainline = \"nginx-mainline\"; }}; }}; in "
                f"{{ inherit (ev.config.networking) hostName; etc = ev.config.environment.etc; "
                f"nginx = ev.config.services.nginx.package; }}")
        proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["hostName"] == node
        if node == "web2":
            assert result["etc"]["upstream"]["text"] == "10.0.0.11:80\n"
            assert result["nginx"] == "nginx-mainline"
