"""One catalogue of option types, with nixpkgs' names: what fleet.py's `lib.types` offers is what
fleet.nix's builds itself, each type accepts and rejects the same values from both, and a type of
nixpkgs' that nixus does not offer is a clear error from fleet.py (fleet.nix has the real lib's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import nixpkgs_lib, run_nixus
from nixus_py.evaluate.lib import types
from nixus_py.nixlang import attr_path
from nixus_py.source import nixfile

pytestmark = pytest.mark.nix

LIB_NIX = Path(nixfile.__file__).parent / "nix" / "lib.nix"


def _offered_to_nix(attr: str) -> set[str]:
    """The names of the `types` (or `types.ints`) that lib.nix builds as nixus's own types."""
    expr = (f"let types = import {LIB_NIX} {{ lib = import {nixpkgs_lib()}; seesUnknown = x: x; ownTypes = true; }}; "
            f"in builtins.attrNames {attr}")
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_fleet_py_and_fleet_nix_offer_the_same_types_by_the_same_names() -> None:
    assert _offered_to_nix("types") == set(vars(types))
    assert _offered_to_nix("types.ints") == set(vars(types.ints))
    # Every type fleet.nix can name comes back to Python as that same type: each has its decoder.
    simple = {n for n, v in vars(types).items() if not callable(v)} - {"ints", "port"}
    simple |= {f"ints.{n}" for n, v in vars(types.ints).items() if not callable(v)}
    built = {n for n, v in vars(types).items() if callable(v)} - {"submoduleWith", "deferredModuleWith"}
    assert simple | built | {"ints.between"} <= set(nixfile._SIMPLE_TYPES) | set(nixfile._TYPE_BUILDERS)


# name: (type in Python, type in Nix, a value it takes, a value it refuses)
CASES = {
    "bool": ("types.bool", "types.bool", True, 1),
    "int": ("types.int", "types.int", -3, "3"),
    "float": ("types.float", "types.float", 1.5, 1),
    "number": ("types.number", "types.number", 2, "2"),
    "str": ("types.str", "types.str", "x", 1),
    "nonEmptyStr": ("types.nonEmptyStr", "types.nonEmptyStr", "x", ""),
    "singleLineStr": ("types.singleLineStr", "types.singleLineStr", "x", "a\nb"),
    "lines": ("types.lines", "types.lines", "a", 1),
    "commas": ("types.commas", "types.commas", "a", 1),
    "envVar": ("types.envVar", "types.envVar", "a", 1),
    "port": ("types.port", "types.port", 22, 70000),
    "ints.u8": ("types.ints.u8", "types.ints.u8", 255, 256),
    "ints.s8": ("types.ints.s8", "types.ints.s8", -128, 128),
    "ints.positive": ("types.ints.positive", "types.ints.positive", 1, 0),
    "ints.between": ("types.ints.between(1, 3)", "types.ints.between 1 3", 2, 4),
    "strMatching": ('types.strMatching("a+")', 'types.strMatching "a+"', "aa", "b"),
    "enum": ('types.enum(["a", "b"])', 'types.enum [ "a" "b" ]', "a", "c"),
    "nullOr": ("types.nullOr(types.int)", "types.nullOr types.int", None, "x"),
    "listOf": ("types.listOf(types.int)", "types.listOf types.int", [1], ["x"]),
    "nonEmptyListOf": ("types.nonEmptyListOf(types.int)", "types.nonEmptyListOf types.int", [1], []),
    "attrsOf": ("types.attrsOf(types.int)", "types.attrsOf types.int", {"a": 1}, {"a": "x"}),
    "either": ("types.either(types.int, types.str)", "types.either types.int types.str", "x", True),
    "oneOf": ("types.oneOf([types.int, types.bool])", "types.oneOf [ types.int types.bool ]", True, "x"),
    "uniq": ("types.uniq(types.int)", "types.uniq types.int", 1, "x"),
}


def _fleets(tmp_path: Path, values: dict[str, object], which: str) -> tuple[Path, Path]:
    """The same options and definitions as fleet.py and as fleet.nix."""
    py, nix = tmp_path / which / "py", tmp_path / which / "nix"
    py.mkdir(parents=True), nix.mkdir(parents=True)
    (py / "fleet.py").write_text(
        "from nixus_py.evaluate import mkEnableOption, mkOption, types\n"
        "modules = [{'options': {'t': {" + ", ".join(f"{n!r}: mkOption(type={CASES[n][0]})" for n in values)
        + "}, 'on': mkEnableOption('it')}, 'config': {'t': " + repr(values) + ", 'on': True}}]\n")
    (nix / "values.json").write_text(json.dumps(values))
    (nix / "fleet.nix").write_text(
        "{ lib, ... }: with lib; {\n  options.t = {\n"
        + "".join(f'    "{n}" = mkOption {{ type = {CASES[n][1]}; }};\n' for n in values)
        + "  };\n  options.on = mkEnableOption \"it\";\n"
        "  config.t = builtins.fromJSON (builtins.readFile ./values.json);\n  config.on = true;\n}\n")
    return py, nix


def test_every_type_takes_the_same_values_from_fleet_py_and_fleet_nix(tmp_path: Path) -> None:
    good = {n: c[2] for n, c in CASES.items()}
    for fleet in _fleets(tmp_path, good, "good"):
        r = run_nixus("eval", "--json", "t", cwd=fleet)
        assert r.code == 0, r.err
        assert json.loads(r.out) == good
        assert json.loads(run_nixus("eval", "--json", "on", cwd=fleet).out) is True


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_type_refuses_the_same_values_from_fleet_py_and_fleet_nix(tmp_path: Path, name: str) -> None:
    errors = []
    for fleet in _fleets(tmp_path, {name: CASES[name][3]}, "bad"):
        r = run_nixus("eval", "--json", "t", cwd=fleet)
        assert r.code == 1 and "Traceback" not in r.err, r.err
        errors.append(r.err.split("Definition values:")[0])
    assert errors[0] == errors[1] and f"option `{attr_path(['t', name])}" in errors[0], errors
    assert "is not of type" in errors[0]


def test_a_type_nixus_does_not_offer_says_so(tmp_path: Path) -> None:
    (tmp_path / "fleet.py").write_text("from nixus_py.evaluate import mkOption, types\n"
                                       "modules = [{'options': {'f': mkOption(type=types.functionTo(types.int))}}]\n")
    r = run_nixus("eval", "--json", cwd=tmp_path)
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert "lib.types.functionTo is not supported by nixus" in r.err, r.err


def test_a_type_nixus_does_not_build_is_the_real_libs_in_fleet_nix(tmp_path: Path) -> None:
    """Nix applies its check and merge (here functionTo's, whose results merge as the element type's)."""
    (tmp_path / "fleet.nix").write_text(
        "{ lib, config, ... }: {\n"
        "  options.f = lib.mkOption { type = lib.types.functionTo (lib.types.listOf lib.types.int); };\n"
        "  options.r = lib.mkOption { type = lib.types.listOf lib.types.int; };\n"
        "  config.f = lib.mkMerge [ (x: [ x ]) (x: [ (x + 1) ]) ];\n"
        "  config.r = config.f 1;\n}\n")
    r = run_nixus("eval", "--json", "r", cwd=tmp_path)
    assert r.code == 0, r.err
    assert json.loads(r.out) == [1, 2]
