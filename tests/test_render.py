"""`nixus render`: one deterministic NixOS module per node that the real module system accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES, eval_rendered, run_nixus

pytestmark = pytest.mark.nix


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
    assert "environment.etc.upstream.text = ''\n        10.0.0.11:80\n      '';" in web2


def test_rendered_nodes_evaluate_with_the_real_module_system(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_nixus("render", "-o", str(out), cwd=EXAMPLES).code == 0
    for module in sorted(out.iterdir()):
        config = eval_rendered(module)
        assert config["networking"]["hostName"] == module.stem  # type: ignore[index]
    web2 = eval_rendered(out / "web2.nix")
    assert web2["environment"]["etc"]["upstream"]["text"] == "10.0.0.11:80\n"  # type: ignore[index]
    assert web2["services"]["nginx"]["package"] == "nginx-mainline"  # type: ignore[index]
