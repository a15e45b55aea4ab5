"""Any Python value renders to the Nix value that means the same thing (checked by real Nix)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixus_py.evaluate import mkForce, mkIf
from nixus_py.evaluate.errors import EvalError
from nixus_py.nixlang import Annotated, NixPath, NixWriter, to_nix

pytestmark = pytest.mark.nix

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
tricky = st.sampled_from(["${x}", "''", "'''", "'${x}", "'''${", "'", "\\", '"', "\\${", "$${a}", "\n", "\t\r", "é∀😀", "${", "$", "''${"])
line = st.one_of(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"), max_size=12),
                 tricky.filter(lambda t: "\n" not in t))
multiline = st.tuples(st.lists(line, min_size=2, max_size=5), st.booleans()).map(
    lambda parts: "\n".join(parts[0]) + ("\n" if parts[1] else ""))
strings = st.one_of(text, tricky, multiline, st.lists(st.one_of(text, tricky), max_size=4).map("".join))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), strings,
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)), max_leaves=12)


def nix_equals_json(source: str, value: Any, tmp_path: Path) -> bool:
    """Nix itself compares the rendered value with the JSON of the Python value (exact floats)."""
    data, expr = tmp_path / "value.json", tmp_path / "value.nix"
    data.write_text(json.dumps(value))
    expr.write_text(f"let v = {source}; in v == builtins.fromJSON (builtins.readFile {data})")
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", str(expr)], capture_output=True, text=True)
    assert proc.returncode == 0, f"{source}\n{proc.stderr}"
    return proc.stdout.strip() == "true"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batch=st.lists(values, min_size=1, max_size=6), pretty=st.booleans())
def test_python_values_round_trip_through_nix(batch: list, pretty: bool, tmp_path: Path) -> None:
    source = to_nix(batch, indent=2 if pretty else None)
    assert nix_equals_json(source, batch, tmp_path), source


def test_priorities_render_as_lib_functions() -> None:
    rendered = to_nix({"a": mkForce(1), "b": mkIf(True, [mkForce("x")])}, indent=2)
    assert "lib.mkForce 1" in rendered and "lib.mkIf true [" in rendered and "(lib.mkForce \"x\")" in rendered


def test_a_value_handed_to_many_places_is_written_as_if_each_had_its_own() -> None:
    """A writer formats an annotated value once per depth (modules give one peer to every node):
    the text must be what the same value, copied into each place, gives."""
    def fleet_of(peer: Any) -> list:
        return [{"peers": [peer(), {"nested": {"deeper": [peer()], "x": 1}}]}, {"one": peer()}]

    def peer() -> Annotated:
        return Annotated({"allowedIPs": ["10.0.0.1/32"], "data": "two\nlines\n", "keepalive": 25}, "peer a: why")

    shared = peer()
    writer = NixWriter(indent=2)
    for level in (0, 3):
        for node_shared, node_copied in zip(fleet_of(lambda: shared), fleet_of(peer)):
            assert writer.text(node_shared, level) == to_nix(node_copied, indent=2, _level=level)


DANGEROUS = "'$\\{}a"


def test_every_short_string_of_quotes_dollars_and_braces_reads_back_exactly(tmp_path: Path) -> None:
    """Exhaustive over the characters that Nix strings escape: `'${` once became `'''${`, an
    escaped quote pair and a live interpolation, in every multi-line (indented) string."""
    import itertools
    words = ["".join(p) for n in range(6) for p in itertools.product(DANGEROUS, repeat=n)]
    # Multi-line, so the indented form is written, with the word at the start, middle and end.
    batch = [s for w in words for s in (f"x{w}\ny", f"x\n{w}", f"{w}\nx\n")]
    source = to_nix(batch, indent=2)
    assert source.count("''\n") > len(batch) // 2  # most of them really are indented strings
    assert nix_equals_json(source, batch, tmp_path)


def test_a_quote_before_an_interpolation_in_a_multi_line_string_stays_text(tmp_path: Path) -> None:
    value = "token='${builtins.trace \"X\" \"\"}\nmotd'''${builtins.trace \"Y\" \"\"}'\n"
    source = to_nix({"text": value}, indent=2)
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", f"({source}).text"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "trace" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout) == value


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(st.text(st.sampled_from("ab./ ${}'\"\\~+-#;"), max_size=12), min_size=1, max_size=20))
def test_a_path_is_the_path_nix_reads_whatever_its_characters(paths: list[str], tmp_path: Path) -> None:
    """`nix.path` and every path nixus writes (a module in a fleet directory with a space, say)."""
    absolute = ["/x/" + p for p in paths]
    source = "[ " + " ".join(f"(toString {NixPath(p).nix()})" for p in absolute) + " ]"
    assert nix_equals_json(source, [os.path.normpath(p) for p in absolute], tmp_path), source


@pytest.mark.parametrize("value,message", [
    ("a\x00b", "cannot hold a NUL character"), ("a\nb\x00\n", "cannot hold a NUL character"),
    (2**63, "out of the range of Nix integers"), (-(2**63) - 1, "out of the range of Nix integers"),
    (float("nan"), "no literal for the float"), (lambda: 1, "has no Nix form"),
])
def test_a_value_without_a_nix_form_is_an_error_not_wrong_nix(value: Any, message: str) -> None:
    with pytest.raises(EvalError, match=message):
        to_nix({"v": [value]}, indent=2)


def test_a_subclass_of_int_float_or_str_renders_as_its_value_not_its_str() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Sneaky(str):
        def __str__(self) -> str:
            return '" + builtins.trace "X" "'

    class Ratio(float):
        def __repr__(self) -> str:
            return "builtins.trace"

    assert to_nix([Level.HIGH, Sneaky("a"), Ratio(0.5)]) == '[ 3 "a" 0.5 ]'
