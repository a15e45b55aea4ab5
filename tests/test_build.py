"""`nixus build`: each node's system is built from exactly its own rendered module, whatever the
node is called and wherever the fleet lives."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import nixpkgs_lib, run_nixus
from nixus_py.testbed.hosts import TESTBED_OS

pytestmark = pytest.mark.nix

# A name that, pasted into the build expression as a path, would close the module list, add a
# module of its own and comment out the rest of the line (and import node `a`'s module).
HOSTILE = "a.nix ] ++ [ { environment.etc.evil.text = ''pwned''; } ]; }).config.system.build.toplevel; #"


@pytest.mark.parametrize("directory", ["fleet", "my fleet"])
def test_a_node_builds_exactly_its_rendered_module(tmp_path: Path, directory: str) -> None:
    fleet = tmp_path / directory
    nixpkgs = fleet / "nixpkgs"  # the testbed OS beside the real nixpkgs lib
    nixpkgs.mkdir(parents=True)
    (nixpkgs / "lib").symlink_to(nixpkgs_lib())
    (nixpkgs / "nixos").symlink_to(TESTBED_OS)
    (fleet / "fleet.py").write_text(textwrap.dedent(f"""\
        HOSTILE = {HOSTILE!r}
        modules = [{{
            "defaults": {{"nixpkgs": {str(nixpkgs)!r}}},
            "nodes": {{
                "a": {{"configuration": {{"environment": {{"etc": {{"a": {{"text": "a's own"}}}}}}}}}},
                HOSTILE: {{"host": "192.0.2.1", "configuration": {{"environment": {{"etc": {{"own": {{"text": "its own"}}}}}}}}}},
            }},
        }}]
        """))
    r = run_nixus("build", "--json", cwd=fleet)
    assert r.code == 0, r.err
    built = {b["node"]: b for b in json.loads(r.out)}
    assert built.keys() == {"a", HOSTILE} and all(b["ok"] for b in built.values()), r.out
    etc = {node: {e["target"]: e["text"] for e in json.loads((Path(b["path"]) / "settings.json").read_text())["etc"]}
           for node, b in built.items()}
    assert etc == {"a": {"a": "a's own"}, HOSTILE: {"own": "its own"}}


def test_a_cached_path_that_is_no_store_path_counts_as_missing() -> None:
    """cache.json is state on disk: what it names reaches a host's shell only once Nix vouches for it."""
    from nixus_py.build.nodes import _valid
    assert _valid(["/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x;reboot"]) == set()
