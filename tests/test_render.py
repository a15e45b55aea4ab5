"""`nixus render`: one deterministic NixOS module per node that the real module system accepts,
the same from fleet.py and fleet.nix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from conftest import eval_rendered, run_nixus

pytestmark = pytest.mark.nix
NODES = ["gw.nix", "ns1.nix", "ns2.nix", "web1.nix", "web2.nix"]


def _render(example: Path, fleet: str, out: Path) -> None:
    r = run_nixus("render", "-f", fleet, "-o", str(out), cwd=example)
    assert r.code == 0, r.err
    assert sorted(p.name for p in out.iterdir()) == NODES


def _without_comments(text: str) -> str:
    return re.sub(r"(?m)^\s*#.*\n|  # .*$", "", text)


def test_render_is_deterministic_and_names_origins(example: Path, tmp_path: Path) -> None:
    _render(example, "fleet.py", tmp_path / "a")
    _render(example, "fleet.py", tmp_path / "b")
    for name in NODES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    web1 = (tmp_path / "a" / "web1.nix").read_text()
    assert "# nixus:modules/ssh.py:" in web1 and "# fleet.py:25" in web1
    assert "# ssh.access.gw.keys.admin.hasAccessTo.web1.root (fleet.py:36)" in web1


def test_fleet_py_and_fleet_nix_render_the_same_modules(example: Path, tmp_path: Path) -> None:
    _render(example, "fleet.py", tmp_path / "py")
    _render(example, "fleet.nix", tmp_path / "nix")
    for name in NODES:
        py, nix = (tmp_path / "py" / name).read_text(), (tmp_path / "nix" / name).read_text()
        assert _without_comments(py) == _without_comments(nix), name
    assert "(fleet.nix:" in (tmp_path / "nix" / "web1.nix").read_text()


def test_rendered_nodes_evaluate_with_the_real_module_system(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _render(example, "fleet.py", out)
    for module in sorted(out.iterdir()):
        config = eval_rendered(module)
        assert config["networking"]["hostName"] == module.stem  # type: ignore[index]
    web2 = eval_rendered(out / "web2.nix")
    assert web2["environment"]["etc"]["upstream"]["text"] == "10.100.0.2:80\n"  # type: ignore[index]
    gw = eval_rendered(out / "gw.nix", "networking.wireguard.interfaces.wg-backbone")
    assert len(gw["peers"]) == 2 and gw["ips"] == ["10.100.0.1/24"]  # type: ignore[index]
    keys = eval_rendered(out / "ns2.nix", "users.users.root.openssh.authorizedKeys.keys")
    assert any(k.endswith("admin@laptop") for k in keys)  # type: ignore[union-attr]
    zone = eval_rendered(out / "ns1.nix", 'services.nsd.zones."example.org.".data')
    assert "www IN CNAME web1.example.org." in zone  # type: ignore[operator]


def test_a_path_under_mkforce_or_mkif_points_at_the_fleets_file(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text(textwrap.dedent("""\
        from nixus_py import nix
        from nixus_py.evaluate import mkForce, mkIf, mkMerge
        modules = [{"nodes": {"a": {"configuration": {"environment": {"etc": {
            "x": {"source": mkForce(nix.path("./x.txt"))},
            "y": mkMerge([{"source": mkIf(True, nix.path("./y.txt"))}]),
        }}}}}}]
        """))
    for name in ("x.txt", "y.txt"):
        (tmp_path / name).write_text(name)
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    etc = eval_rendered(tmp_path / "out" / "a.nix", "environment.etc")
    assert [Path(etc[n]["source"]).name.split("-", 1)[1] for n in ("x", "y")] == ["x.txt", "y.txt"]
