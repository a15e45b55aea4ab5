"""The module system, specified by example: Python modules evaluated as nixpkgs' `lib.evalModules` would.

Values, orders and error messages were checked against the real `lib/modules.nix` and `lib/types.nix`
(`nix-instantiate --eval` on the same modules written in Nix). Python has no thunks, so a module
body that reads `config` gets a reference (usable as a definition or `mkIf` condition, or later in
`lazy(lambda: ...)`); those parts, `.py` module files and `types.nixValue` are nixus's own.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nixus_py.evaluate import (EvalCycle, EvalError, eval_modules, lazy, mkAfter, mkAliasOptionModule, mkBefore,
                               mkDefault, mkForce, mkIf, mkMerge, mkOption, mkOptionDefault, mkOrder, mkOverride,
                               mkRemovedOptionModule, mkRenamedOptionModule, types)
from nixus_py.evaluate.lazyattrs import deep_force
from nixus_py.evaluate.location import Loc
from nixus_py.nixlang import NixExpr


def config(*modules: Any) -> Any:
    """The config of evaluating `modules`."""
    return eval_modules(list(modules)).config


def option(type_: Any, **kwargs: Any) -> dict:
    """A module declaring one option `x`."""
    return {"_file": "decl.py", "options": {"x": mkOption(type=type_, **kwargs)}}


def defining(value: Any, file: str = "def.py") -> dict:
    """A module defining `x` in `file`."""
    return {"_file": file, "config": {"x": value}}


def x_of(type_: Any, *values: Any) -> Any:
    """The plain value of option `x` of `type_`, defined once per value (each in its own module)."""
    return deep_force(config(option(type_), *(defining(v, f"def{i}.py") for i, v in enumerate(values, 1))).x)


def x_error(type_: Any, *values: Any) -> str:
    """The error message of reading `x` of `type_` with these definitions."""
    with pytest.raises(EvalError) as e:
        x_of(type_, *values)
    return str(e.value)


def x_error_of(*modules: Any) -> str:
    """The error message of reading the int option `x` defined by `modules`."""
    with pytest.raises(EvalError) as e:
        config(option(types.int), *modules).x
    return str(e.value)


def not_of_type(description: str, value: str, file: str = "def1.py", option_: str = "x") -> str:
    """nixpkgs' message for a definition that fails the type check."""
    return (f"A definition for option `{option_}' is not of type `{description}'. Definition values:\n"
            f"- In `{file}': {value}")


# --- types: a good value, and the message for a bad one ---------------------------------------

TYPE_CASES = [  # type, a good value, a bad value, nixpkgs' description of the type, the bad value as shown
    (types.bool, True, "yes", "boolean", '"yes"'),
    (types.int, -3, True, "signed integer", "true"),
    (types.int, 7, 1.5, "signed integer", "1.5"),
    (types.ints.unsigned, 0, 1.5, "unsigned integer, meaning >=0", "1.5"),
    (types.ints.positive, 1, 0, "positive integer, meaning >0", "0"),
    (types.ints.between(1, 10), 10, 11, "integer between 1 and 10 (both inclusive)", "11"),
    (types.port, 65535, 65536, "16 bit unsigned integer; between 0 and 65535 (both inclusive)", "65536"),
    (types.float, 1.5, 1, "floating point number", "1"),
    (types.str, "a", 1, "string", "1"),
    (types.nonEmptyStr, "a", " \n", "non-empty string", '" \\n"'),
    (types.lines, "a", 1, 'strings concatenated with "\\n"', "1"),
    (types.commas, "a", 1, 'strings concatenated with ","', "1"),
    (types.separatedString(";"), "a", None, 'strings concatenated with ";"', "null"),
    (types.path, "/etc/hosts", "etc/hosts", "absolute path", '"etc/hosts"'),
    (types.enum(["a", "b"]), "b", "c", 'one of "a", "b"', '"c"'),
    (types.enum(["a"]), "a", "b", 'value "a" (singular enum)', '"b"'),
    (types.nullOr(types.int), None, "a", "null or signed integer", '"a"'),
    (types.listOf(types.str), ["a"], "a", "list of string", '"a"'),
    (types.attrsOf(types.int), {"a": 1}, 1, "attribute set of signed integer", "1"),
    (types.lazyAttrsOf(types.int), {"a": 1}, [], "lazy attribute set of signed integer", "[ ]"),
    (types.either(types.int, types.str), "a", True, "signed integer or string", "true"),
    (types.either(types.listOf(types.int), types.str), [1], 1, "(list of signed integer) or string", "1"),
    (types.either(types.ints.unsigned, types.str), 1, None, "unsigned integer, meaning >=0, or string", "null"),
    (types.oneOf([types.int, types.str, types.bool]), False, 1.5, "signed integer or string or boolean", "1.5"),
    (types.uniq(types.int), 1, "a", "signed integer", '"a"'),
    (types.unique(types.int, "m"), 1, "a", "signed integer", '"a"'),
    (types.attrs, {"a": 1}, "a", "attribute set", '"a"'),
    (types.listOf(types.enum(["a", "b"])), ["a"], {}, 'list of (one of "a", "b")', "{ }"),
    (types.listOf(types.submodule({})), [{}], 1, "list of (submodule)", "1"),
    (types.nullOr(types.port), None, "80",
     "null or 16 bit unsigned integer; between 0 and 65535 (both inclusive)", '"80"'),
    (types.deferredModule, {}, 1, "module", "1"),
    (types.submodule({}), {}, 1, "submodule", "1"),
    (types.submodule({"freeformType": types.attrsOf(types.str)}), {"a": "b"}, 1,
     "open submodule of attribute set of string", "1"),
]


@pytest.mark.parametrize("type_, good, bad, description, shown", TYPE_CASES, ids=[c[3] for c in TYPE_CASES])
def test_a_type_accepts_its_values_and_rejects_others_with_the_nixpkgs_message(type_, good, bad, description, shown):
    x_of(type_, good)
    assert not_of_type(description, shown) in x_error(type_, bad)


def test_a_type_error_names_the_definition_file_and_line_of_a_py_module(tmp_path: Path):
    (tmp_path / "web.py").write_text(textwrap.dedent("""\
        from nixus_py.evaluate import mkOption, types
        module = {
            "options": {"port": mkOption(type=types.port)},
            "config": {
                "port": "http",
            },
        }
    """))
    with pytest.raises(EvalError) as e:
        config(str(tmp_path / "web.py")).port
    assert not_of_type(types.port.description, '"http"', str(Loc(str(tmp_path / "web.py"), 5)), "port") in str(e.value)
    assert e.value.option == ("port",)


def test_a_type_error_names_the_file_and_line_of_a_function_module():
    def module(**_: Any) -> dict:
        return {"x": "a"}

    where = Loc(__file__, module.__code__.co_firstlineno)
    assert not_of_type("signed integer", '"a"', str(where)) in x_error_of(module)


def test_a_bad_list_element_is_reported_at_its_definition_entry():
    message = x_error(types.listOf(types.str), ["a", 1])
    assert not_of_type("string", "1", option_='x."[definition 1-entry 2]"') in message


def test_a_bad_attribute_value_is_reported_at_its_attribute():
    assert not_of_type("signed integer", '"b"', option_="x.a") in x_error(types.attrsOf(types.int), {"a": "b"})


def test_a_bad_value_nested_in_a_submodule_is_reported_at_its_full_path():
    sub = types.submodule({"options": {"port": mkOption(type=types.port)}})
    assert not_of_type(types.port.description, "65536", option_="x.port") in x_error(sub, {"port": 65536})


# --- types: how definitions merge ---------------------------------------------------------------

def test_bool_int_and_str_definitions_must_be_equal():
    assert x_of(types.bool, True, True) is True
    assert x_of(types.str, "a", "a") == "a"
    assert x_of(types.int, 2, 2) == 2


@pytest.mark.parametrize("type_, a, b, shown", [
    (types.str, "a", "b", ('"a"', '"b"')),
    (types.int, 1, 2, ("1", "2")),
    (types.bool, True, False, ("true", "false")),
    (types.enum(["a", "b"]), "a", "b", ('"a"', '"b"')),
])
def test_conflicting_definitions_name_both_files_and_suggest_a_priority(type_, a, b, shown):
    message = x_error(type_, a, b)
    assert message.startswith("The option `x' has conflicting definition values:")
    assert f"- In `def2.py': {shown[1]}" in message and f"- In `def1.py': {shown[0]}" in message
    assert "Use `lib.mkForce value` or `lib.mkDefault value`" in message


def test_lines_commas_and_separated_strings_join_definitions():
    assert x_of(types.lines, "a", "b") == "b\na"
    assert x_of(types.commas, "a", "b") == "b,a"
    assert x_of(types.separatedString(" "), "a", "b") == "b a"


def test_an_int_subtype_keeps_int_merging():
    assert x_of(types.ints.positive, 3, 3) == 3
    assert "conflicting definition values" in x_error(types.port, 80, 443)


def test_list_definitions_are_concatenated_last_module_first_like_nixpkgs():
    assert x_of(types.listOf(types.int), [1, 2], [3]) == [3, 1, 2]


def test_an_imported_module_defines_before_the_modules_imported_alongside_its_importer():
    m = config(option(types.listOf(types.int)), {"x": [1], "imports": [{"x": [11]}]}, {"x": [2]})
    assert deep_force(m.x) == [11, 2, 1]


def test_attrs_of_merges_names_and_each_value_with_the_element_type():
    assert x_of(types.attrsOf(types.listOf(types.int)), {"a": [1]}, {"a": [2], "b": []}) == {"a": [2, 1], "b": []}
    assert "`x.a' has conflicting definition values" in x_error(types.attrsOf(types.int), {"a": 1}, {"a": 2})


def test_attrs_of_drops_a_name_whose_definitions_are_all_mkif_false():
    assert x_of(types.attrsOf(types.int), {"a": mkIf(False, 1), "b": 2}) == {"b": 2}


def test_lazy_attrs_of_keeps_a_name_whose_definitions_are_all_mkif_false():
    x = config(option(types.lazyAttrsOf(types.int)), defining({"a": mkIf(False, 1), "b": 2})).x
    assert list(x) == ["a", "b"] and x.b == 2
    with pytest.raises(EvalError, match="The option `x.a' was accessed but has no value defined"):
        x.a


def test_lazy_attrs_of_does_not_evaluate_values_that_are_not_read():
    x = config(option(types.lazyAttrsOf(types.int)), defining({"a": lazy(lambda: 1 // 0), "b": 2})).x
    assert x.b == 2


def test_attrs_is_a_shallow_update_in_definition_order():
    assert x_of(types.attrs, {"a": {"b": 1}, "c": 1}, {"a": {"d": 2}}) == {"a": {"b": 1}, "c": 1}


def test_null_or_accepts_all_null_or_no_null_definitions():
    assert x_of(types.nullOr(types.int), None, None) is None
    assert x_of(types.nullOr(types.listOf(types.int)), [1], [2]) == [2, 1]
    assert "is defined both null and not null" in x_error(types.nullOr(types.int), None, 1)


def test_either_merges_with_the_first_type_all_definitions_fit():
    assert x_of(types.either(types.listOf(types.int), types.str), [1], [2]) == [2, 1]
    assert x_of(types.either(types.int, types.lines), "a", "b") == "b\na"


def test_either_rejects_definitions_that_no_single_type_accepts_together():
    message = x_error(types.either(types.int, types.str), 1, "a")
    assert message.startswith("A definition for option `x' is not of type `signed integer or string'. "
                              "The option `x` is neither a value of type `signed integer` nor `string`")
    assert "- In `def2.py': \"a\"\n- In `def1.py': 1" in message


def test_one_of_tries_each_type_in_turn():
    assert x_of(types.oneOf([types.int, types.str, types.listOf(types.int)]), [1], [2]) == [2, 1]


@pytest.mark.parametrize("type_", [types.uniq(types.int), types.unique(types.int, "One please."), types.raw])
def test_a_unique_type_rejects_two_definitions_even_if_equal(type_):
    message = x_error(type_, 1, 1)
    assert message.startswith("The option `x' is defined multiple times while it's expected to be unique.")
    assert "- In `def2.py': 1\n- In `def1.py': 1" in message


def test_unique_shows_its_message():
    assert "\nOne please.\n" in x_error(types.unique(types.int, "One please."), 1, 2)


def test_unique_still_lets_the_highest_priority_definition_win():
    assert deep_force(config(option(types.uniq(types.int)), defining(1), defining(mkDefault(2))).x) == 1


def test_a_unique_type_is_empty_like_its_element_type():
    assert deep_force(config(option(types.uniq(types.listOf(types.int)))).x) == []


def test_anything_merges_attribute_sets_recursively():
    value = x_of(types.anything, {"a": {"b": 1}, "l": [1]}, {"a": {"c": 2}, "l": [1]})
    assert value == {"a": {"b": 1, "c": 2}, "l": [1]}


def test_anything_requires_equal_lists_and_scalars():
    assert "`x' has conflicting definition values" in x_error(types.anything, [1], [2])
    assert "`x.a' has conflicting definition values" in x_error(types.anything, {"a": 1}, {"a": 2})


def test_anything_rejects_definitions_of_different_kinds():
    assert "The option `x.a' has conflicting option types in `def2.py' and `def1.py'" in \
        x_error(types.anything, {"a": 1}, {"a": "s"})


def test_anything_honours_properties_inside_attribute_sets():
    assert x_of(types.anything, {"a": mkIf(False, 1), "b": mkForce(1)}, {"b": 2}) == {"b": 1}


def test_anything_merges_functions_by_merging_their_results():
    f = x_of(types.anything, lambda n: {"a": n}, lambda n: {"b": n + 1})
    assert deep_force(f(1)) == {"a": 1, "b": 2}


def test_raw_and_unspecified_accept_any_value_unchecked():
    marker = object()
    assert x_of(types.raw, marker) is marker
    assert x_of(types.unspecified, marker) is marker


def test_unspecified_merges_like_nixpkgs_merge_default_option():
    assert x_of(types.unspecified, [1], [2]) == [2, 1]
    assert x_of(types.unspecified, {"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    assert x_of(types.unspecified, False, True) is True
    assert "Cannot merge definitions of `x'" in x_error(types.unspecified, 1, "a")


def test_nix_value_keeps_a_nix_expression_as_is_and_allows_one_definition():
    expr = NixExpr("pkgs.hello")
    assert x_of(types.nixValue, expr) is expr
    assert "expected to be unique" in x_error(types.nixValue, expr, expr)


def test_single_line_str_drops_one_trailing_newline():
    assert x_of(types.singleLineStr, "a\n") == "a"
    assert x_error(types.singleLineStr, "a\nb").startswith(
        "A definition for option `x' is not of type `(optionally newline-terminated) single-line string'.")


def test_number_is_an_int_or_a_float():
    assert types.number.description == "signed integer or floating point number"
    assert types.listOf(types.number).description == "list of (signed integer or floating point number)"
    assert x_of(types.number, 1.5) == 1.5


def test_coerced_to_converts_definitions_of_the_other_type_and_is_empty_like_the_final_type():
    names = types.coercedTo(types.attrsOf(types.int), lambda v: sorted(v), types.listOf(types.str))
    assert x_of(names, {"b": 1, "a": 2}, ["c"]) == ["c", "a", "b"]
    assert deep_force(config(option(names)).x) == []
    assert "is not of type `(list of string) or (attribute set of signed integer) convertible to it'" in \
        x_error(names, "a")


def test_deferred_module_collects_definitions_as_modules_to_import_elsewhere():
    inner = {"options": {"y": mkOption(type=types.int)}}
    modules = config(option(types.deferredModule), defining(inner), defining({"y": 1})).x
    assert config(modules).y == 1


def test_a_submodule_gets_its_attribute_name_as_the_name_argument():
    def host(name: str, **_: Any) -> dict:
        return {"options": {"hostName": mkOption(type=types.str, default=name)}}

    hosts = config(option(types.attrsOf(types.submodule(host))), defining({"web": {}, "db": {"hostName": "pg"}})).x
    assert hosts.web.hostName == "web" and hosts.db.hostName == "pg"


def test_submodule_definitions_merge_into_one_configuration_in_module_order():
    sub = types.submodule({"options": {"a": mkOption(type=types.int), "l": mkOption(type=types.listOf(types.int))}})
    x = config(option(sub), defining({"a": 1, "l": [1]}), defining({"l": [2]})).x
    assert x.a == 1 and deep_force(x.l) == [1, 2]


def test_an_undefined_submodule_option_is_the_submodule_with_its_defaults():
    sub = types.submodule({"options": {"a": mkOption(type=types.int, default=1)}})
    assert config(option(sub)).x.a == 1


def test_a_submodule_definition_may_be_a_function_module():
    sub = types.submodule({"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int)}})
    x = config(option(sub), defining(lambda config, **_: {"a": 1, "b": lazy(lambda: config.a + 1)})).x
    assert x.b == 2


def test_a_submodule_rejects_definitions_of_undeclared_sub_options():
    sub = types.submodule({"options": {"a": mkOption(type=types.int)}})
    with pytest.raises(EvalError, match=r"The option `x\.b' does not exist"):
        config(option(sub), defining({"b": 1})).x.a


def test_sub_options_of_a_submodule_may_be_declared_by_other_modules():
    sub = types.submodule({"options": {"a": mkOption(type=types.int)}})
    x = config(option(sub), {"options": {"x": {"b": mkOption(type=types.int, default=2)}}}, defining({"a": 1})).x
    assert (x.a, x.b) == (1, 2)


def test_an_option_declared_twice_with_a_default_is_an_error():
    with pytest.raises(EvalError, match="^The option `x' in `a.py' is already declared in `b.py'.$"):
        config({"_file": "a.py", "options": {"x": mkOption(type=types.int, default=1)}},
               {"_file": "b.py", "options": {"x": mkOption(type=types.int, default=2)}}).x


# --- defaults and priorities ----------------------------------------------------------------------

def test_an_option_default_has_priority_1500():
    ev = eval_modules([option(types.int, default=1)])
    assert ev.config.x == 1 and ev.options.x.highest_prio == 1500


def test_any_definition_overrides_the_default():
    assert x_of(types.listOf(types.int), [2]) == [2] and config(option(types.int, default=1), defining(2)).x == 2


def test_mk_option_default_ties_with_the_default_and_merges_after_it():
    m = config(option(types.listOf(types.int), default=[1]), defining(mkOptionDefault([2])))
    assert deep_force(m.x) == [1, 2]


def test_mk_default_beats_the_default_and_loses_to_a_plain_definition():
    assert config(option(types.int, default=1), defining(mkDefault(2))).x == 2
    assert config(option(types.int, default=1), defining(mkDefault(2)), defining(3)).x == 3


def test_mk_force_beats_a_plain_definition():
    ev = eval_modules([option(types.int), defining(mkForce(1)), defining(2)])
    assert ev.config.x == 1 and ev.options.x.highest_prio == 50


def test_mk_override_uses_the_lowest_number_and_merges_ties():
    m = config(option(types.listOf(types.int)), defining(mkOverride(10, [1])), defining(mkOverride(20, [2])),
               defining(mkOverride(10, [3])))
    assert deep_force(m.x) == [3, 1]


def test_the_highest_priority_wins_per_attribute_of_attrs_of():
    value = x_of(types.attrsOf(types.int), {"a": mkForce(1), "b": 2}, {"a": 3, "b": mkDefault(4)})
    assert value == {"a": 1, "b": 2}


def test_the_highest_priority_wins_per_option_of_a_submodule():
    sub = types.submodule({"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int, default=0)}})
    x = config(option(sub), defining({"a": mkDefault(1), "b": 5}), defining({"a": mkForce(2)}),
               defining({"a": 3, "b": mkDefault(4)})).x
    assert (x.a, x.b) == (2, 5)


def test_mk_force_on_a_whole_attrs_of_definition_replaces_all_other_definitions():
    assert x_of(types.attrsOf(types.int), mkForce({"a": 1}), {"a": 2, "b": 3}) == {"a": 1}


def test_mk_force_on_a_whole_submodule_definition_replaces_all_other_definitions():
    sub = types.submodule({"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int, default=0)}})
    x = config(option(sub), defining(mkForce({"a": 2})), defining({"a": 3, "b": 4})).x
    assert (x.a, x.b) == (2, 0)


# --- order ----------------------------------------------------------------------------------------

def test_mk_before_and_mk_after_sort_list_definitions_stably():
    value = x_of(types.listOf(types.int), mkBefore([1]), [2], mkOrder(500, [3]), mkAfter([4]), [5])
    assert value == [3, 1, 5, 2, 4]


def test_mk_order_inside_a_module_keeps_its_merge_order():
    assert x_of(types.listOf(types.int), mkMerge([mkAfter([1]), [2], mkBefore([3]), mkOrder(1000, [4])])) == \
        [3, 2, 4, 1]


def test_mk_before_applies_to_lines():
    assert x_of(types.lines, "b", mkBefore("a")) == "a\nb"


# --- conditions and merges ------------------------------------------------------------------------

def test_mk_if_true_defines_and_mk_if_false_does_not():
    assert config(option(types.int, default=0), defining(mkIf(True, 1))).x == 1
    assert config(option(types.int, default=0), defining(mkIf(False, 1))).x == 0


def test_nested_mk_if_and_mk_merge_are_discharged():
    value = mkMerge([[1], mkIf(True, mkMerge([[2], mkIf(False, [3]), mkIf(True, mkIf(True, [4]))])),
                     mkIf(False, mkMerge([[5]]))])
    assert x_of(types.listOf(types.int), value) == [1, 2, 4]


def test_mk_merge_of_a_list_not_evaluated_yet_merges_it_and_of_anything_else_is_an_error():
    """As from Nix, where `mkMerge options.x.definitions` is a value read in a later round."""
    assert x_of(types.listOf(types.int), mkMerge(lazy(lambda: [[1], [2]]))) == [1, 2]
    assert config({"config": mkMerge(lazy(lambda: [{"x": 1}]))}, option(types.int)).x == 1
    with pytest.raises(EvalError, match="lib.mkMerge expects a list, but got a set"):
        x_of(types.int, mkMerge(lazy(lambda: {"a": 1})))


def test_mk_if_on_a_whole_config_is_pushed_into_each_option():
    modules = [{"options": {"a": mkOption(type=types.int, default=0), "b": mkOption(type=types.int, default=0)}},
               {"config": mkIf(True, {"a": 1}), "_file": "m"}, {"config": mkIf(False, {"b": 1})}]
    c = config(*modules)
    assert (c.a, c.b) == (1, 0)


def test_mk_if_condition_may_read_config():
    m = config({"options": {"enable": mkOption(type=types.bool, default=False), "x": mkOption(type=types.int,
                                                                                              default=0)}},
               lambda config, **_: {"x": mkIf(config.enable, 1)}, {"enable": True})
    assert m.x == 1


def test_mk_if_condition_must_be_a_bool():
    with pytest.raises(EvalError, match="‘mkIf’ called with a non-Boolean condition"):
        x_of(types.int, mkIf("yes", 1))


def test_mk_if_false_definitions_of_undeclared_options_still_do_not_exist():
    with pytest.raises(EvalError) as e:
        config(option(types.int, default=0), {"_file": "m.py", "y": mkIf(False, 1)}).x
    assert str(e.value).startswith("The option `y' does not exist. Definition values:\n- In `m.py': lib.mkIf false 1")
    assert "Did you mean `x'?" in str(e.value)


def test_a_misspelt_option_suggests_the_declared_ones():
    decl = {"options": {"services": {"nginx": {"enable": mkOption(type=types.bool, default=False)}}}}
    with pytest.raises(EvalError, match=r"(?s)`services\.nginx\.enabel' does not exist.*Did you mean "
                                        r"`services\.nginx\.enable'\?"):
        config(decl, {"services": {"nginx": {"enabel": True}}}).services


def test_an_undeclared_option_suggests_the_three_closest_declared_ones():
    decl = {"options": {n: mkOption(type=types.int, default=0) for n in ("port", "enable", "hosts", "zzzzzzzz")}}
    with pytest.raises(EvalError, match="Did you mean `port', `hosts' or `enable'\\?$"):
        config(decl, {"prot": 1}).port


def test_an_option_cannot_also_be_a_parent_of_options():
    with pytest.raises(EvalError, match=r"^The option `a' in module `m1' would be a parent of the following options, "
                                        r"but its type `signed integer' does not support nested options.\n"
                                        r" - option\(s\) with prefix `a.b' in module `m2'$"):
        config({"_file": "m1", "options": {"a": mkOption(type=types.int)}},
               {"_file": "m2", "options": {"a": {"b": mkOption(type=types.int)}}}).a


def test_an_option_declared_as_a_bare_type_asks_for_mk_option():
    with pytest.raises(EvalError, match="^In module m.py: expected an option declaration at option path `a.b` but "
                                        "got an attribute set with type option-type\n\nWhen declaring an option, "
                                        "you must wrap the type in a `mkOption` call"):
        config({"_file": "m.py", "options": {"a": {"b": types.int}}}).a.b


def test_a_value_placed_in_config_instead_of_options_gets_a_hint():
    with pytest.raises(EvalError, match="trying to declare an option by placing it into `config'"):
        config({"y": mkOption(type=types.int)}).y


# --- options without a value, read-only options -----------------------------------------------------

def test_an_option_without_definitions_or_default_has_no_value():
    with pytest.raises(EvalError, match="^The option `x' was accessed but has no value defined. Try setting the "
                                        "option.$"):
        config(option(types.str)).x


def test_an_option_whose_definitions_are_all_false_conditions_has_no_value():
    with pytest.raises(EvalError, match="was accessed but has no value defined"):
        config(option(types.str), defining(mkIf(False, "a"))).x


def test_options_of_types_with_an_empty_value_are_empty_when_undefined():
    assert deep_force(config(option(types.listOf(types.int))).x) == []
    assert deep_force(config(option(types.attrsOf(types.int))).x) == {}
    assert config(option(types.nullOr(types.int))).x is None


def test_a_read_only_option_rejects_a_second_definition():
    with pytest.raises(EvalError) as e:
        config(option(types.str, readOnly=True, default="a"), defining("b")).x
    assert str(e.value) == ("The option `x' is read-only, but it's set multiple times. Definition values:\n"
                            "- In `decl.py': \"a\"\n- In `def.py': \"b\"")


def test_a_read_only_option_accepts_its_default():
    assert config(option(types.str, readOnly=True, default="a")).x == "a"


def test_apply_transforms_the_merged_value():
    assert config(option(types.listOf(types.int), apply=sorted), defining([3]), defining([1, 2])).x == [1, 2, 3]


# --- freeform modules -------------------------------------------------------------------------------

def test_freeform_definitions_are_merged_with_the_freeform_type():
    c = config({"freeformType": types.attrsOf(types.listOf(types.int)), "options": {"a": mkOption(type=types.int)}},
               {"a": 1, "b": [1]}, {"b": [2], "c": []})
    assert (c.a, deep_force(c.b), deep_force(c.c)) == (1, [2, 1], [])


def test_freeform_definitions_are_type_checked():
    with pytest.raises(EvalError, match=re.escape(not_of_type("signed integer", '"s"', "m.py", "b"))):
        config({"freeformType": types.attrsOf(types.int)}, {"_file": "m.py", "b": "s"}).b


def test_a_freeform_submodule_keeps_undeclared_attributes():
    sub = types.submodule({"freeformType": types.attrsOf(types.str), "options": {"a": mkOption(type=types.int,
                                                                                                 default=1)}})
    x = config(option(sub), defining({"b": "x"})).x
    assert (x.a, x.b) == (1, "x")


def test_freeform_declared_options_take_precedence_on_nested_names():
    c = config({"freeformType": types.attrsOf(types.attrsOf(types.int)),
                "options": {"s": {"a": mkOption(type=types.int, apply=lambda v: v * 10)}}},
               {"s": {"a": 1, "b": 2}})
    assert deep_force(c.s) == {"a": 10, "b": 2}


# --- imports, disabledModules, keys -----------------------------------------------------------------

def test_imports_may_be_dicts_and_functions():
    c = config({"imports": [option(types.listOf(types.str)), lambda lib, **_: {"x": lib.mkBefore(["f"])}],
                "x": ["d"]})
    assert deep_force(c.x) == ["f", "d"]


def test_a_whole_module_may_be_a_property_of_its_config():
    c = config(option(types.int, default=1), mkIf(True, {"x": 2}), mkForce({"x": 3}))
    assert c.x == 3


def test_a_py_file_module_defines_module_or_modules(tmp_path: Path):
    (tmp_path / "one.py").write_text("from nixus_py.evaluate import mkOption, types\n"
                                     "module = {'options': {'x': mkOption(type=types.listOf(types.int))}}\n")
    (tmp_path / "two.py").write_text("modules = [{'x': [1]}, lambda config, **_: {'x': [2]}]\n")
    c = config({"imports": [str(tmp_path / "one.py"), tmp_path / "two.py"]})
    assert deep_force(c.x) == [2, 1]


def test_a_py_file_imports_paths_relative_to_itself(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "opt.py").write_text("from nixus_py.evaluate import mkOption, types\n"
                                             "module = {'options': {'x': mkOption(type=types.int)}}\n")
    (tmp_path / "main.py").write_text("module = {'imports': ['./sub/opt.py'], 'x': 1}\n")
    assert config(str(tmp_path / "main.py")).x == 1


def test_a_module_imported_twice_by_path_counts_once(tmp_path: Path):
    (tmp_path / "m.py").write_text("module = {'x': [1]}\n")
    c = config(option(types.listOf(types.int)), str(tmp_path / "m.py"), {"imports": [str(tmp_path / "m.py")]})
    assert deep_force(c.x) == [1]


def test_modules_with_the_same_key_count_once():
    m = {"key": "m", "x": [1]}
    assert deep_force(config(option(types.listOf(types.int)), m, {"imports": [m]}, dict(m)).x) == [1]


def test_disabled_modules_by_key_are_left_out_with_their_imports():
    disabled = {"key": "old", "imports": [option(types.int)], "x": 1}
    with pytest.raises(EvalError, match="The option `x' does not exist"):
        config(disabled, {"disabledModules": [{"key": "old"}], "x": 2}).x


def test_disabled_modules_by_path_are_left_out(tmp_path: Path):
    (tmp_path / "old.py").write_text("from nixus_py.evaluate import mkOption, types\n"
                                     "module = {'options': {'x': mkOption(type=types.int, default=1)}}\n")
    (tmp_path / "new.py").write_text("from nixus_py.evaluate import mkOption, types\n"
                                     "module = {'disabledModules': ['./old.py'],\n"
                                     "          'options': {'x': mkOption(type=types.int, default=2)}}\n")
    assert config(str(tmp_path / "old.py"), str(tmp_path / "new.py")).x == 2


def test_a_disabled_module_without_a_key_is_an_error():
    with pytest.raises(EvalError, match="does not have a `key` attribute"):
        config({"disabledModules": [{"x": 1}]}).x


def test_module_functions_receive_config_options_lib_and_module_args():
    def m(config, options, lib, pkgs, **_):
        return {"options": {"x": lib.mkOption(type=lib.types.int)},
                "config": {"x": lazy(lambda: pkgs + int(options.x.declarations != []))}}

    assert config(m, {"_module": {"args": {"pkgs": 41}}}).x == 42


@pytest.mark.parametrize("module", [
    lambda config, **_: {"imports": [option(types.int)] if config.enable else []},
    lambda config, **_: {"imports": config.extraModules, "config": {}},
])
def test_a_module_cannot_import_based_on_config(module):
    decl = {"options": {"enable": mkOption(type=types.bool, default=True),
                        "extraModules": mkOption(type=types.listOf(types.raw), default=[])}}
    with pytest.raises(EvalCycle, match="while the modules were being collected.*defer the computation with `lazy"):
        config(decl, module).enable


def test_a_module_with_options_and_stray_attributes_is_rejected():
    with pytest.raises(EvalError, match="Module `m.py' has an unsupported attribute `x'"):
        config({"_file": "m.py", "options": {}, "x": 1}).x


def test_module_check_false_ignores_undeclared_definitions():
    assert config(option(types.int), defining(2), {"_module": {"check": False}, "y": 1}).x == 2


# --- renamed, aliased and removed options -----------------------------------------------------------

def test_a_renamed_option_forwards_its_definitions_with_their_priority():
    new = {"options": {"new": mkOption(type=types.int)}}
    assert config(mkRenamedOptionModule(["old"], ["new"]), new, {"old": 3}).new == 3
    assert config(mkRenamedOptionModule(["old"], ["new"]), new, {"old": mkDefault(3), "new": 4}).new == 4
    with pytest.warns(UserWarning, match="Obsolete option `old' is used. It was renamed to `new'."):
        assert config(mkRenamedOptionModule(["old"], ["new"]), new, {"old": mkForce(3), "new": 4}).old == 3


def test_an_alias_reads_and_writes_the_target_option():
    modules = [mkAliasOptionModule(["a", "old"], ["new"]),
               {"options": {"new": mkOption(type=types.listOf(types.int))}}]
    c = config(*modules, {"a": {"old": [1]}}, {"new": [2]})
    assert deep_force(c.new) == [2, 1] and deep_force(c.a.old) == [2, 1]


def test_an_alias_keeps_the_priority_of_its_definitions():
    modules = [mkAliasOptionModule(["old"], ["new"]), {"options": {"new": mkOption(type=types.int)}}]
    assert config(*modules, {"old": mkDefault(3), "new": 4}).new == 4


def test_a_removed_option_fails_with_the_instructions_when_read():
    with pytest.raises(EvalError, match="The option `old' can no longer be used since it's been removed. Use `new'."):
        config(mkRemovedOptionModule(["old"], "Use `new'."), {"old": 1}).old


# --- laziness and recursion ---------------------------------------------------------------------

def test_options_are_evaluated_only_when_read():
    c = config({"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int)}},
               {"a": lazy(lambda: 1 // 0), "b": 2})
    assert c.b == 2


def test_options_may_read_each_other_in_any_order():
    decl = {"options": {n: mkOption(type=types.int) for n in "abc"}}
    defs = lambda config, **_: {"a": lazy(lambda: config.b + 1), "b": lazy(lambda: config.c * 2), "c": 5}  # noqa: E731
    c = config(decl, defs)
    assert (c.a, c.b, c.c) == (11, 10, 5)


def test_an_option_needing_itself_is_a_cycle_naming_the_option_paths():
    decl = {"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int)}}
    c = config(decl, lambda config, **_: {"a": lazy(lambda: config.b + 1), "b": config.a})
    with pytest.raises(EvalCycle) as e:
        c.a
    assert "infinite recursion encountered" in str(e.value)
    assert "  a\n  -> b\n  -> a" in str(e.value)
    assert e.value.option == ("a",)


def test_a_cycle_through_submodules_names_the_full_option_paths():
    node = {"options": {"ip": mkOption(type=types.str)}}
    c = config(option(types.attrsOf(types.submodule(node))),
               lambda config, **_: {"x": {"a": {"ip": config.x.b.ip}, "b": {"ip": config.x.a.ip}}})
    with pytest.raises(EvalCycle) as e:
        c.x.a.ip
    assert "x.a.ip\n  -> x.b.ip\n  -> x.a.ip" in str(e.value)


def test_a_cycle_can_be_caught_and_evaluation_continues():
    c = config({"options": {"a": mkOption(type=types.int), "b": mkOption(type=types.int, default=1)}},
               lambda config, **_: {"a": config.a})
    with pytest.raises(EvalCycle):
        c.a
    assert c.b == 1
    with pytest.raises(EvalCycle):
        c.a


def test_a_lazy_value_needing_itself_is_a_cycle_in_the_definition_of_its_option():
    value = lazy(lambda: value.force() + 1)
    with pytest.raises(EvalCycle, match="^infinite recursion encountered: a lazy value needs its own value "
                                        r"\(in the definition of `x' at def1.py\)$"):
        x_of(types.int, value)


def test_config_read_in_a_module_body_is_a_reference_that_works_later():
    def module(config, **_: Any) -> dict:
        cfg = config.server
        return {"url": lazy(lambda: f"http://{cfg.host}:{cfg.port + 1}"),
                "https": mkIf(lazy(lambda: cfg.port == 443), True),
                "hosts": lazy(lambda: [h for h in cfg.aliases if h != cfg.host])}

    decl = {"options": {"server": {"host": mkOption(type=types.str), "port": mkOption(type=types.port),
                                   "aliases": mkOption(type=types.listOf(types.str))},
                        "url": mkOption(type=types.str), "https": mkOption(type=types.bool, default=False),
                        "hosts": mkOption(type=types.listOf(types.str))}}
    c = config(decl, module, {"server": {"host": "a", "port": 8079, "aliases": ["a", "b"]}})
    assert (c.url, c.https, deep_force(c.hosts)) == ("http://a:8080", False, ["b"])


def test_using_a_config_value_in_a_module_body_is_an_error_that_explains_lazy():
    with pytest.raises(EvalCycle, match=r"used the value of `config\.x' while the modules were being collected"):
        config(option(types.int, default=1), lambda config, **_: {"y": 1} if config.x > 0 else {}).x


def _nodes_reading_each_other() -> list:
    def node(name: str, **_: Any) -> dict:
        return {"options": {"ip": mkOption(type=types.str), "peerIp": mkOption(type=types.str),
                            "peer": mkOption(type=types.str)}}

    def fleet(config, **_: Any) -> dict:
        nodes = config.nodes
        return {"nodes": {
            "a": {"ip": "10.0.0.1", "peer": "b", "peerIp": lazy(lambda: nodes[nodes.a.peer].ip)},
            "b": {"ip": lazy(lambda: nodes.a.ip.replace(".1", ".2")), "peer": "a",
                  "peerIp": lazy(lambda: nodes[nodes.b.peer].ip)},
        }}

    return [{"options": {"nodes": mkOption(type=types.attrsOf(types.submodule(node)))}}, fleet]


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_submodule_entries_read_each_others_options_in_any_order(order):
    nodes = config(*_nodes_reading_each_other()).nodes
    seen = {name: nodes[name].peerIp for name in order}
    assert seen == {"a": "10.0.0.2", "b": "10.0.0.1"}


def test_a_submodule_entry_reads_another_through_its_own_config_argument():
    def node(name: str, config, **_: Any) -> dict:
        return {"options": {"n": mkOption(type=types.int), "double": mkOption(type=types.int)},
                "config": {"double": lazy(lambda: config.n * 2)}}

    top = lambda config, **_: {"x": {"a": {"n": lazy(lambda: config.x.b.double)}, "b": {"n": 2}}}  # noqa: E731
    assert config(option(types.attrsOf(types.submodule(node))), top).x.a.double == 8


def test_a_chain_of_2000_options_each_reading_the_next_evaluates():
    n = 2000

    def chain(config, **_: Any) -> dict:
        return {**{f"o{i}": lazy(lambda i=i: config[f"o{i + 1}"] + 1) for i in range(n - 1)}, f"o{n - 1}": 0}

    c = config({"options": {f"o{i}": mkOption(type=types.int) for i in range(n)}}, chain)
    assert c.o0 == n - 1


def test_a_chain_of_2000_options_read_with_dot_access_evaluates():
    n = 2000
    names = [f"o{i}" for i in range(n)]

    def chain(config, **_: Any) -> dict:
        return {**{names[i]: lazy(lambda i=i: getattr(config, names[i + 1]) + 1) for i in range(n - 1)},
                names[-1]: 0}

    c = config({"options": {name: mkOption(type=types.int) for name in names}}, chain)
    assert c.o0 == n - 1
