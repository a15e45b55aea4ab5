"""`nixus build`: each node's system is built from exactly its own rendered module, whatever the
node is called and wherever the fleet lives."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import nixpkgs_lib, run_nixus
from nixus_py.build.nodes import NodeBuild, _instantiate, _node_expr, _realise, _valid
from nixus_py.render.node import RenderedNode
from nixus_py.testbed.hosts import TESTBED_OS

pytestmark = pytest.mark.nix

# A name that, pasted into the build expression as a path, would close the module list, add a
# module of its own and comment out the rest of the line (and import node `a`'s module).
HOSTILE = "a.nix ] ++ [ { environment.etc.evil.text = ''pwned''; } ]; }).config.system.build.toplevel; #"


def _nixpkgs(directory: Path) -> Path:
    """The testbed OS beside the real nixpkgs lib, as a node's `nixpkgs`."""
    nixpkgs = directory / "nixpkgs"
    nixpkgs.mkdir(parents=True)
    (nixpkgs / "lib").symlink_to(nixpkgs_lib())
    (nixpkgs / "nixos").symlink_to(TESTBED_OS)
    return nixpkgs


def _etc(out: str) -> dict[str, str]:
    """The etc files of a built testbed system."""
    return {e["target"]: e["text"] for e in json.loads((Path(out) / "settings.json").read_text())["etc"]}


def test_a_fleet_in_a_directory_with_a_space_builds_each_node_from_its_own_module(tmp_path: Path) -> None:
    fleet = tmp_path / "my fleet"
    nixpkgs = _nixpkgs(fleet)
    (fleet / "fleet.py").write_text(textwrap.dedent(f"""\
        modules = [{{
            "defaults": {{"nixpkgs": {str(nixpkgs)!r}}},
            "nodes": {{
                "a": {{"configuration": {{"environment": {{"etc": {{"a": {{"text": "a's own"}}}}}}}}}},
                "b": {{"configuration": {{"environment": {{"etc": {{"b": {{"text": "b's own"}}}}}}}}}},
            }},
        }}]
        """))
    r = run_nixus("build", "--json", cwd=fleet)
    assert r.code == 0, r.err
    built = {b["node"]: b for b in json.loads(r.out)}
    assert {node: _etc(b["path"]) for node, b in built.items()} == {"a": {"a": "a's own"}, "b": {"b": "b's own"}}


def test_a_node_whose_name_would_close_the_module_list_builds_exactly_its_module(tmp_path: Path) -> None:
    """At the build itself, whatever checks the names before: the name is data to Nix."""
    nixpkgs, rendered, build_dir = _nixpkgs(tmp_path), tmp_path / "rendered", tmp_path / "build"
    rendered.mkdir(), build_dir.mkdir()
    builds = []
    for name, etc in (("a", "a"), (HOSTILE, "own")):
        text = f'{{ ... }}: {{ environment.etc.{etc}.text = "{etc}"; }}\n'
        module = rendered / f"{name}.nix"
        module.write_text(text)
        b = NodeBuild(name, module)
        b.expr, _ = _node_expr(name, {"nixpkgs": str(nixpkgs), "system": "x86_64-linux"},
                               RenderedNode(module, text, None), tmp_path)
        builds.append(b)
    _instantiate(builds, build_dir, lambda node, phase: None, jobs=2)
    _realise(builds, lambda node, phase: None, jobs=2)
    assert all(b.ok for b in builds), [b.error for b in builds]
    assert [_etc(b.out or "") for b in builds] == [{"a": "a"}, {"own": "own"}]


NIXUS_EXTENDED = """\
{ config, lib, ... }: {
  # As Nixus's own example does: more options for every node, and more for NixOS's evaluation.
  options.defaults = lib.mkOption {
    type = lib.types.submodule {
      options.zone = lib.mkOption { type = lib.types.str; default = "eu"; };
      options.configuration = lib.mkOption {
        type = lib.types.submoduleWith {
          specialArgs.extra = ./extra;
          specialArgs.site = "berlin";
          modules = [ ./common.nix ];
        };
      };
    };
  };
  config = {
    defaults = { name, config, ... }: {
      nixpkgs = NIXPKGS;
      configuration = { site, extra, ... }: {
        imports = [ (extra + "/motd.nix") ];
        environment.etc.where.text = "${name} in ${config.zone}, ${site}";
      };
    };
    nodes.a = { zone = "us"; };
    nodes.b = { };
  };
}
"""


def test_a_nixus_fleet_that_extends_the_node_type_and_nixos_evaluation_builds(tmp_path: Path) -> None:
    """A fleet declares `defaults` again (options for every node) and a node's `configuration`
    as a `submoduleWith` (NixOS modules and `specialArgs`, usable in `imports`), as Nixus fleets
    do; NixOS gets them all."""
    nixpkgs = _nixpkgs(tmp_path)
    (tmp_path / "fleet.nix").write_text(NIXUS_EXTENDED.replace("NIXPKGS", str(nixpkgs)))
    (tmp_path / "common.nix").write_text('{ environment.etc.common.text = "for all"; }\n')
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "motd.nix").write_text('{ site, ... }: { environment.etc.motd.text = "welcome to ${site}"; }\n')
    r = run_nixus("build", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    built = {b["node"]: _etc(b["path"]) for b in json.loads(r.out)}
    assert built == {node: {"where": f"{node} in {zone}, berlin", "common": "for all", "motd": "welcome to berlin"}
                     for node, zone in (("a", "us"), ("b", "eu"))}


def test_a_cached_path_that_is_no_store_path_counts_as_missing() -> None:
    """cache.json is state on disk: what it names reaches a host's shell only once Nix vouches for it."""
    assert _valid(["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x;reboot"]) == set()


def _built_etc(fleet: Path) -> dict[str, str]:
    r = run_nixus("build", "--json", cwd=fleet)
    assert r.code == 0, r.err
    [built] = json.loads(r.out)
    return _etc(built["path"])


@pytest.mark.parametrize("fleet_file, source, edited", [
    # A fleet.py node whose configuration is a file.
    ("fleet.py", "modules = [{{'defaults': {{'nixpkgs': nix.path({nixpkgs!r})}},"
                 " 'nodes': {{'a': {{'configuration': nix.path('./a.nix')}}}}}}]\n", "a.nix"),
    # A fleet.nix node whose configuration is a function in the fleet file itself.
    ("fleet.nix", "{{ nodes.a = {{ nixpkgs = {nixpkgs}; configuration = {{ ... }}: "
                  "{{ environment.etc.x.text = \"one\"; }}; }}; }}\n", "fleet.nix"),
])
def test_an_edited_configuration_file_is_built_anew(tmp_path: Path, fleet_file: str, source: str,
                                                    edited: str) -> None:
    """The rendered module is the same text before and after: the build cache must not answer."""
    nixpkgs = _nixpkgs(tmp_path)
    (tmp_path / fleet_file).write_text(("from nixus_py import nix\n" if fleet_file == "fleet.py" else "")
                                       + source.format(nixpkgs=str(nixpkgs)))
    (tmp_path / "a.nix").write_text('{ ... }: { environment.etc.x.text = "one"; }\n')
    assert _built_etc(tmp_path) == {"x": "one"}
    target = tmp_path / edited
    target.write_text(target.read_text().replace('"one"', '"two"'))
    assert _built_etc(tmp_path) == {"x": "two"}
