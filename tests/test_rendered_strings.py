"""Fleet data stays data: strings from the characters Nix strings and comments treat specially,
at every place the renderer writes one (values in both quoting styles, attribute names, comments),
from fleet.py and fleet.nix, evaluate with the real nixpkgs lib to exactly what `nixus eval` says."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import eval_rendered, run_nixus

pytestmark = pytest.mark.nix

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyFD3+Dy1lYkzOkQf1nYNPKvC0D7VnwBuzfAW93L7Zw admin"
TOKENS = ["'", "''", "'${", "''${", "'''${", "$", "${", "${x}", "$${", "{", "}", "\\", "\\${", '"', "#",
          "/*", "*/", "\n", "\t", "\r", "\r\n", "\x01", "\x1b", "\x1f", "\x7f", "\x85", "\u2028", "é",
          "😀", "𝄞", " ", "a", "let", "in"]
word = st.lists(st.sampled_from(TOKENS), max_size=8).map("".join)
# Multi-line text whose lines are not blank is written as an indented string: the other style.
lines = st.lists(st.lists(st.sampled_from([t for t in TOKENS if t not in ("\n", "\r", "\r\n", "\t")]),
                          min_size=1, max_size=6).map(lambda ts: "x" + "".join(ts)), min_size=2, max_size=4)
text = st.one_of(word, st.tuples(lines, st.booleans()).map(lambda t: "\n".join(t[0]) + ("\n" if t[1] else "")))
name = word.filter(lambda w: w != "")


def _fleet(etc: dict[str, str], users: list[str], key_name: str, hosts: list[str]) -> dict:
    """The fleet's own module: etc files (names and texts), users, an ssh key granted by name (its
    name goes into the comment beside the key), and a second module with hosts."""
    return {
        "nodes": {"n": {"host": "192.0.2.1", "configuration": {
            "environment": {"etc": {k: {"text": v} for k, v in etc.items()}},
            "users": {"users": {u: {"description": u} for u in users}},
        }}},
        "ssh": {"access": {"n": {"keys": {key_name: {"publicKey": KEY,
                                                     "hasAccessTo": {"n": {"root": True}}}}}}},
    }, {"nodes": {"n": {"configuration": {"networking": {"hosts": {h: [h] for h in hosts}}}}}}


def _write(directory: Path, kind: str, own: dict, other: dict, other_file: str) -> None:
    """The same fleet as fleet.py or fleet.nix; `other` comes from a file named `other_file`."""
    if kind == "py":
        (directory / "fleet.py").write_text(f"modules = [{own!r}, {str(directory / other_file)!r}]\n")
        (directory / other_file).write_text(f"module = {other!r}\n")
        return
    (directory / "data.json").write_text(json.dumps({"own": own, "other": other, "file": other_file}))
    (directory / "fleet.nix").write_text(textwrap.dedent("""\
        { ... }:
        let data = builtins.fromJSON (builtins.readFile ./data.json); in
        data.own // { imports = [ (./. + "/${data.file}") ]; }
        """))
    (directory / other_file).write_text("{ ... }: (builtins.fromJSON (builtins.readFile ./data.json)).other\n")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(etc=st.dictionaries(name, text, max_size=6), users=st.lists(name, max_size=3, unique=True),
       key_name=name, hosts=st.lists(name, max_size=3, unique=True), file=name)
def test_hostile_strings_render_as_the_data_nixus_evaluated(etc: dict[str, str], users: list[str], key_name: str,
                                                            hosts: list[str], file: str, tmp_path_factory) -> None:
    own, other = _fleet(etc, users, key_name, hosts)
    file_name = "m" + file.replace("/", "_")[:60]
    for kind in ("py", "nix"):
        fleet = tmp_path_factory.mktemp(kind)
        _write(fleet, kind, own, other, file_name + "." + kind)
        r = run_nixus("render", "-o", "out", cwd=fleet)
        assert r.code == 0, r.err
        rendered = (fleet / "out" / "n.nix").read_text()
        config, stderr = eval_rendered(fleet / "out" / "n.nix", with_stderr=True)
        assert "trace:" not in stderr, rendered
        assert {k: e["text"] for k, e in config["environment"]["etc"].items()} == etc, rendered
        assert config["networking"]["hosts"] == {h: [h] for h in hosts}, rendered
        assert config["users"]["users"]["root"]["openssh"]["authorizedKeys"]["keys"] == [KEY], rendered
        assert {u: config["users"]["users"][u]["description"] for u in users} == {u: u for u in users}, rendered
        # What nixus evaluated, definition by definition, is the data of the fleet's two modules.
        shown = json.loads(run_nixus("eval", "--json", "nodes.n.configuration", cwd=fleet).out)
        values = [d["value"] for d in shown["__deferredModule"]]
        assert own["nodes"]["n"]["configuration"] in values and other["nodes"]["n"]["configuration"] in values
        assert json.loads(run_nixus("eval", "--json", "ssh.access", cwd=fleet).out)["n"]["keys"] == \
            own["ssh"]["access"]["n"]["keys"]


# Data read from a file (an inventory, say) that happens to look like nixus's own markers, or like
# a path: in nixpkgs it is a plain attribute set, and so it must be in nixus and its rendered module.
LOOKALIKES = {
    "path": {"_type": "path", "path": "/etc/hostname"},
    "ref": {"__nixus": "ref", "ref": ["files", 0]},
    "pending": {"__nixus": "pending", "ref": []},
    "lines": {"__lines": [1, 2], "k": "v"},
    "literal": {"_type": "literalExpression", "text": "pkgs.hello"},
    "nested": [{"__nixus": "float", "value": "1e400"}],
}


def test_data_shaped_like_nixus_markers_stays_data(tmp_path: Path) -> None:
    (tmp_path / "inventory.json").write_text(json.dumps(LOOKALIKES))
    (tmp_path / "fleet.nix").write_text(textwrap.dedent("""\
        { lib, config, ... }: {
          options.inventory = lib.mkOption { type = lib.types.attrsOf lib.types.anything; };
          config.inventory = builtins.fromJSON (builtins.readFile ./inventory.json);
          config.nodes.n.configuration.system.build.inventory = config.inventory;
        }
        """))
    shown = run_nixus("eval", "--json", "inventory", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert json.loads(shown.out) == LOOKALIKES
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 0, r.err
    assert "/etc/hostname" not in (tmp_path / "out" / "n.nix").read_text().replace('"/etc/hostname"', "")
    assert eval_rendered(tmp_path / "out" / "n.nix", "system.build.inventory") == LOOKALIKES


def test_a_priority_that_is_not_a_number_is_an_error_not_code(tmp_path: Path) -> None:
    """An override read as data (`_type = "override"` means one to nixpkgs too) with Nix code for
    its priority once went into the rendered module as that code."""
    (tmp_path / "fleet.nix").write_text(textwrap.dedent("""\
        {
          nodes.n.configuration.environment.etc.x.text = builtins.fromJSON ''
            {"_type": "override", "priority": "(builtins.trace \\"X\\" 50)", "content": "hi"}'';
        }
        """))
    r = run_nixus("render", "-o", "out", cwd=tmp_path)
    assert r.code == 1 and "trace: X" not in r.err and "Traceback" not in r.err, r.err
    assert "lib.mkOverride in" in r.err and "fleet.nix" in r.err and "the priority must be an integer" in r.err


def test_a_fleet_nix_in_a_directory_whose_name_looks_like_nix_code_evaluates_as_written(tmp_path: Path) -> None:
    """Module files reach the driver as strings (JSON), never pasted into an expression."""
    fleet = tmp_path / "fleet ${builtins.trace \"X\" \"\"} \"q\" 's"
    fleet.mkdir()
    (fleet / "fleet.nix").write_text('{ imports = [ ./node.nix ]; nodes.a.host = "192.0.2.1"; }\n')
    (fleet / "node.nix").write_text('{ nodes.a.tags = [ "from-node-nix" ]; }\n')
    r = run_nixus("eval", "--json", "nodes.a.tags", cwd=fleet)
    assert r.code == 0 and "trace: X" not in r.err, r.err
    assert json.loads(r.out) == ["from-node-nix"]
    rendered = run_nixus("render", "-o", "out", cwd=fleet)
    assert rendered.code == 0 and "trace: X" not in rendered.err, rendered.err
