"""Differential conformance: nixpkgs' own module-system tests, evaluated by nixus and by the real lib.

Every case names module files, an attribute of `config` and what nixpkgs' `lib/tests/modules.sh`
expects. The real lib evaluates the files exactly as modules.sh does (`tests/modules/default.nix`);
nixus evaluates a fleet.nix that imports the same files. A value must be the same JSON on both
sides; an error must be an error on both sides, of the same kind (the regex of modules.sh), and
nixus must report it as a user error (exit code 1, no traceback).

The shared case files are used in place from `$NIXUS_NIXPKGS_LIB/tests/modules`; cases for what
those files do not isolate are ours, in `tests/conformance/` (named `own/...` below).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Result, nixpkgs_lib
from forked_nixus import EVAL_TIMEOUT, forked_nixus, nixus_eval

pytestmark = pytest.mark.nix

OWN_CASES = Path(__file__).resolve().parent / "conformance"


@dataclass(frozen=True)
class Value:
    """The attribute evaluates to this JSON value."""

    value: Any


@dataclass(frozen=True)
class Fails:
    """Evaluating the attribute fails with a message matching `pattern` (`nixus`: where nixus words it
    differently from Nix itself, e.g. for a missing attribute)."""

    pattern: str
    nixus: str | None = None


@dataclass(frozen=True, eq=False)
class Case:
    """`config.<attr>` of the modules in `files` (an empty attr is the whole config)."""

    files: tuple[str, ...]
    attr: str
    expect: Value | Fails

    @property
    def id(self) -> str:
        return f"{self.attr or 'config'}[{'+'.join(Path(f).stem for f in self.files)}]"

    def paths(self) -> list[Path]:
        shared = nixpkgs_lib() / "tests" / "modules"
        return [OWN_CASES / f.removeprefix("own/") if f.startswith("own/") else shared / f for f in self.files]


def ok(attr: str, value: Any, *files: str, xfail: str | None = None) -> Any:
    """modules.sh's checkConfigOutput (with the exact value instead of a regex)."""
    return _param(Case(files, attr, Value(value)), xfail)


def fails(attr: str, pattern: str, *files: str, nixus: str | None = None, xfail: str | None = None) -> Any:
    """modules.sh's checkConfigError."""
    return _param(Case(files, attr, Fails(pattern, nixus)), xfail)


def missing(attr: str, name: str, *files: str) -> Any:
    """Reading `attr` fails: the config has no attribute `name`."""
    return fails(attr, f"attribute .*{name}.* not found", *files)


def _param(case: Case, xfail: str | None) -> Any:
    """A table row; `xfail` names a known nixus bug (strict: the row flips when the bug is fixed)."""
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(case, id=case.id, marks=marks)


NOT_OF_TYPE = r"A definition for option .* is not of type"
DOES_NOT_EXIST = r"The option .* does not exist. Definition values:\n\s*- In .*"
NO_VALUE = r"The option .{}. was accessed but has no value defined. Try setting the option."
ALREADY_DECLARED = r"The option .{}. in .*/{}(:\d+)?. is already declared in .*/{}"  # nixus adds lines

# Ported from modules.sh, in its order. Deliberately not ported, because fleet.nix modules have no
# such thing: what the `options` module argument does not carry (fleet.nix modules get each
# option's isDefined, value, default, type name and description, declarations and files; not
# test-mergeAttrDefinitionsWithPrio, doRename-*, define-option-dependently*, submoduleFiles,
# freeform-submodules' fooDeclarations, declaration-positions), `lib.evalModules`/`extendModules` inside
# a module (specialArgs-lib, declare-submodule-via-evalModules, deferred-module-error,
# declare-variants, class-check, options-type-error-configuration, extendModules-*), types nixus
# does not implement (attrTag, functionTo, pathInStore/pathWith/externalPath, fileset, gvariant,
# serializableValueWith, attrListOf, attrsWith, optionDeclaration, boolByOr,
# mkPackageOption's package sets, mkDefinition), the v2 merge internals (v2-check-coherence,
# *valueMeta*), module classes and `_type` checks, warnings (ABORT_ON_WARN),
# `specialArgs.modulesPath` (disable-enable-modules), files that declare `nodes`, which the fleet
# core owns (deferred-module), the hint for a module system without options (error-mkOption-in-config:
# a fleet always has options), and attribute sets with `outPath` (types-anything/attrs-coercible:
# Nix prints them as strings in the JSON that carries them to nixus).
CASES = [
    ok("result", "one two", "shorthand-meta.nix"),
    fails("", r"In module .*test-push-down-non-attrs.nix., you're trying to define a value of type `bool'\n"
              r"\s*rather than an attribute set for the option", "test-push-down-non-attrs.nix"),
    ok("result", True, "module-argument-default.nix"),
    fails("sub", r"The option .sub.wrong2. does not exist. Definition values:",
          "error-mkOption-in-submodule-config.nix"),
    fails("sub", r".*This can happen if you e.g. declared your options in .types.submodule.",
          "error-mkOption-in-submodule-config.nix"),
    fails("bad", r".*A definition for option .bad. is not of type .non-empty .list of .submodule...\.",
          "error-nonEmptyListOf-submodule.nix"),
    # bool
    ok("enable", False, "declare-enable.nix"),
    fails("enable", r"The option .* does not exist. Definition values:\n\s*- In .*: true", "define-enable.nix"),
    fails("enable", DOES_NOT_EXIST, "define-enable-throw.nix"),
    fails("enable", r"while evaluating a definition from `.*/define-enable-abort.nix", "define-enable-abort.nix",
          nixus=r"evaluation aborted with the following error message: 'oops'"),  # not a trace: where it aborted
    # options declared next to a submodule option are merged into it
    ok("bare-submodule.nested", 1, "declare-bare-submodule.nix", "declare-bare-submodule-nested-option.nix"),
    ok("bare-submodule.deep", 2, "declare-bare-submodule.nix", "declare-bare-submodule-deep-option.nix"),
    ok("bare-submodule.nested", 42, "declare-bare-submodule.nix", "declare-bare-submodule-nested-option.nix",
       "declare-bare-submodule-deep-option.nix", "define-bare-submodule-values.nix"),
    ok("bare-submodule.deep", 420, "declare-bare-submodule.nix", "declare-bare-submodule-nested-option.nix",
       "declare-bare-submodule-deep-option.nix", "define-bare-submodule-values.nix"),
    ok("bare-submodule.deep", 2, "declare-bare-submodule.nix", "declare-bare-submodule-deep-option.nix",
       "define-shorthandOnlyDefinesConfig-true.nix"),
    fails("bare-submodule.deep",
          ALREADY_DECLARED.format(r"bare-submodule.deep", "declare-bare-submodule-deep-option.nix",
                                  "declare-bare-submodule-deep-option-duplicate.nix"),
          "declare-bare-submodule.nix", "declare-bare-submodule-deep-option.nix",
          "declare-bare-submodule-deep-option-duplicate.nix"),
    # integer types
    ok("value", 42, "declare-int-unsigned-value.nix", "define-value-int-positive.nix"),
    fails("value", NOT_OF_TYPE + r".*unsigned integer.*. Definition values:\n\s*- In .*: -23",
          "declare-int-unsigned-value.nix", "define-value-int-negative.nix"),
    fails("value", NOT_OF_TYPE + r".*positive integer.*. Definition values:\n\s*- In .*: 0",
          "declare-int-positive-value.nix", "define-value-int-zero.nix"),
    ok("value", 42, "declare-int-between-value.nix", "define-value-int-positive.nix"),
    fails("value", NOT_OF_TYPE + r".*between.*-21 and 43.*inclusive.*. Definition values:\n\s*- In .*: -23",
          "declare-int-between-value.nix", "define-value-int-negative.nix"),
    # either, oneOf
    ok("value", 42, "declare-either.nix", "define-value-int-positive.nix"),
    ok("value", "24", "declare-either.nix", "define-value-string.nix"),
    ok("value", 42, "declare-oneOf.nix", "define-value-int-positive.nix"),
    ok("value", [], "declare-oneOf.nix", "define-value-list.nix"),
    ok("value", "24", "declare-oneOf.nix", "define-value-string.nix"),
    # mkForce
    ok("enable", True, "declare-enable.nix", "define-enable.nix"),
    ok("enable", False, "declare-enable.nix", "define-enable.nix", "define-force-enable.nix"),
    ok("enable", False, "declare-enable.nix", "define-enable.nix", "define-enable-force.nix"),
    # mkForce at every level of an attrsOf submodule definition
    missing("attrsOfSub.foo.enable", "foo", "declare-attrsOfSub-any-enable.nix"),
    ok("attrsOfSub.foo.enable", False, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix"),
    ok("attrsOfSub.foo.enable", True, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo-enable.nix"),
    *(ok("attrsOfSub.foo.enable", False, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo-enable.nix",
         f) for f in ("define-force-attrsOfSub-foo-enable.nix", "define-attrsOfSub-force-foo-enable.nix",
                      "define-attrsOfSub-foo-force-enable.nix", "define-attrsOfSub-foo-enable-force.nix")),
    # mkForce on a whole attrsOf definition drops the other definitions' attributes
    missing("attrsOfSub.bar.enable", "bar", "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix"),
    ok("attrsOfSub.bar.enable", False, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix",
       "define-attrsOfSub-bar.nix"),
    ok("attrsOfSub.bar.enable", True, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix",
       "define-attrsOfSub-bar-enable.nix"),
    *(missing("attrsOfSub.bar.enable", "bar", "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix",
              "define-attrsOfSub-bar-enable.nix", f)
      for f in ("define-force-attrsOfSub-foo-enable.nix", "define-attrsOfSub-force-foo-enable.nix")),
    *(ok("attrsOfSub.bar.enable", True, "declare-attrsOfSub-any-enable.nix", "define-attrsOfSub-foo.nix",
         "define-attrsOfSub-bar-enable.nix", f)
      for f in ("define-attrsOfSub-foo-force-enable.nix", "define-attrsOfSub-foo-enable-force.nix")),
    # mkIf at every level of an attrsOf submodule definition
    missing("attrsOfSub.foo.enable", "foo", "declare-enable.nix", "declare-attrsOfSub-any-enable.nix"),
    *(missing("attrsOfSub.foo.enable", "foo", "declare-enable.nix", "declare-attrsOfSub-any-enable.nix", f)
      for f in ("define-if-attrsOfSub-foo-enable.nix", "define-attrsOfSub-if-foo-enable.nix",
                "define-attrsOfSub-foo-if-enable.nix")),
    ok("attrsOfSub.foo.enable", False, "declare-enable.nix", "declare-attrsOfSub-any-enable.nix",
       "define-attrsOfSub-foo-enable-if.nix"),
    *(ok("attrsOfSub.foo.enable", True, "declare-enable.nix", "declare-attrsOfSub-any-enable.nix",
         "define-enable.nix", f)
      for f in ("define-if-attrsOfSub-foo-enable.nix", "define-attrsOfSub-if-foo-enable.nix",
                "define-attrsOfSub-foo-if-enable.nix", "define-attrsOfSub-foo-enable-if.nix")),
    # importApply
    ok("value", "abc", "importApply.nix"),
    ok("value", "abc", "importApply-disabling.nix"),
    # disabledModules
    ok("enable", True, "define-enable.nix", "declare-enable.nix"),
    ok("enable", False, "define-enable.nix", "declare-enable.nix", "disable-define-enable.nix"),
    ok("enable", False, "define-enable.nix", "declare-enable.nix", "disable-define-enable-string-path.nix"),
    fails("enable", r"The option .*enable.* does not exist. Definition values:\n\s*- In .*: true",
          "define-enable.nix", "declare-enable.nix", "disable-declare-enable.nix"),
    missing("enable", "enable", "define-enable.nix", "declare-enable.nix", "disable-define-enable.nix",
            "disable-declare-enable.nix"),
    ok("positive.enable", True, "disable-module-with-key.nix"),
    ok("negative.enable", False, "disable-module-with-key.nix"),
    fails("enable", r"Module ..*disable-module-bad-key.nix. contains a disabledModules item that is an attribute "
                    r"set, presumably a module, that does not have a .key. attribute. .*",
          "disable-module-bad-key.nix"),
    ok("positive.enable", True, "disable-module-with-toString-key.nix"),
    ok("negative.enable", False, "disable-module-with-toString-key.nix"),
    # _module.args
    fails("enable", r"while evaluating the module argument .*custom.* in .*define-enable-with-custom-arg.nix.*:",
          "declare-enable.nix", "define-enable-with-custom-arg.nix"),
    ok("enable", True, "declare-enable.nix", "define-enable-with-custom-arg.nix", "define-_module-args-custom.nix"),
    fails("enable", "infinite recursion encountered", "declare-enable.nix", "define-enable-with-custom-arg.nix",
          "define-_module-args-custom.nix", "import-custom-arg.nix"),
    # _module.check
    fails("enable", DOES_NOT_EXIST, "declare-enable.nix", "define-enable.nix", "define-attrsOfSub-foo.nix"),
    ok("enable", True, "declare-enable.nix", "define-enable.nix", "define-attrsOfSub-foo.nix",
       "define-module-check.nix"),
    # coercedTo
    ok("value", "42", "declare-coerced-value.nix"),
    ok("value", "24", "declare-coerced-value.nix", "define-value-string.nix"),
    fails("value", r"A definition for option .*. is not of type .*.\n\s*- In .*: \[ \]",
          "declare-coerced-value.nix", "define-value-list.nix"),
    fails("value", ALREADY_DECLARED.format("value", "declare-coerced-value.nix",
                                           "declare-coerced-value-no-default.nix"),
          "declare-coerced-value.nix", "declare-coerced-value-no-default.nix"),
    ok("value", 12, "declare-coerced-value-unsound.nix"),
    fails("value", r"A definition for option .* is not of type .*.\n\s*- In .*: \"1000\"",
          "declare-coerced-value-unsound.nix", "define-value-string-bigint.nix"),
    fails("value", r"toInt: Could not convert .* to int",
          "declare-coerced-value-unsound.nix", "define-value-string-arbitrary.nix"),
    # mkAliasOptionModule keeps the priority of the alias' definitions
    ok("enable", True, "alias-with-priority.nix"),
    ok("enableAlias", True, "alias-with-priority.nix"),
    ok("enable", False, "alias-with-priority-can-override.nix"),
    ok("enableAlias", False, "alias-with-priority-can-override.nix"),
    # submoduleWith
    ok("submodule.foo", "foo", "declare-submoduleWith-special.nix"),
    ok("submodule.config", True, "declare-submoduleWith-shorthand.nix", "define-submoduleWith-shorthand.nix"),
    fails("submodule.config", r"is not of type `boolean", "declare-submoduleWith-shorthand.nix",
          "define-submoduleWith-noshorthand.nix"),
    fails("submodule.config", r"In module ..*define-submoduleWith-shorthand.nix., you're trying to define a value "
                              r"of type `bool'\n\s*rather than an attribute set for the option",
          "declare-submoduleWith-noshorthand.nix", "define-submoduleWith-shorthand.nix"),
    ok("submodule.config", True, "declare-submoduleWith-noshorthand.nix", "define-submoduleWith-noshorthand.nix"),
    ok("submodule.inner", True, "declare-submoduleWith-modules.nix"),
    ok("submodule.outer", True, "declare-submoduleWith-modules.nix"),
    ok("submodule.enable", True, "declare-submoduleWith-path.nix"),
    ok("foo.ok", True, "prefix-module-argument.nix"),
    # disabledModules works recursively
    ok("enable", True, "disable-recursive/main.nix"),
    ok("enable", True, "disable-recursive/main.nix", "disable-recursive/disable-foo.nix"),
    ok("enable", True, "disable-recursive/main.nix", "disable-recursive/disable-bar.nix"),
    fails("enable", r"The option .* does not exist. Definition values:\n\s*- In .*: true",
          "disable-recursive/main.nix", "disable-recursive/disable-foo.nix", "disable-recursive/disable-bar.nix"),
    ok("enable", True, "import-from-store.nix"),
    # attrsOf is strict in its attribute names (so it handles mkIf), lazyAttrsOf is not
    fails("isLazy", "is not lazy", "declare-attrsOf.nix", "attrsOf-lazy-check.nix"),
    ok("isLazy", True, "declare-lazyAttrsOf.nix", "attrsOf-lazy-check.nix"),
    ok("conditionalWorks", True, "declare-attrsOf.nix", "attrsOf-conditional-check.nix"),
    ok("conditionalWorks", False, "declare-lazyAttrsOf.nix", "attrsOf-conditional-check.nix"),
    ok("value.foo", "empty", "declare-lazyAttrsOf.nix", "attrsOf-conditional-check.nix"),
    # every definition is type-checked, not only the first
    fails("value", NOT_OF_TYPE, "declare-int-unsigned-value.nix", "define-value-list.nix",
          "define-value-int-positive.nix"),
    # freeform modules
    ok("value", "24", "freeform-attrsOf.nix", "define-value-string.nix"),
    fails("value", NOT_OF_TYPE, "freeform-attrsOf.nix", "define-value-list.nix"),
    ok("value", "yes", "freeform-attrsOf.nix", "define-value-string-properties.nix"),
    ok("enable", False, "freeform-attrsOf.nix", "define-value-string.nix", "declare-enable.nix"),
    ok("value", "24", "freeform-attrsOf.nix", "define-value-string.nix", "declare-enable.nix"),
    ok("nest.foo", False, "freeform-attrsOf.nix", "freeform-nested.nix"),
    ok("nest.bar", "bar", "freeform-attrsOf.nix", "freeform-nested.nix"),
    ok("foo", None, "freeform-attrsOf.nix", "freeform-str-dep-unstr.nix"),
    ok("foo", "24", "freeform-attrsOf.nix", "freeform-str-dep-unstr.nix", "define-value-string.nix"),
    fails("foo", "infinite recursion encountered", "freeform-attrsOf.nix", "freeform-unstr-dep-str.nix"),
    fails("foo", NO_VALUE.format(".*"), "freeform-lazyAttrsOf.nix", "freeform-unstr-dep-str.nix"),
    ok("foo", "24", "freeform-lazyAttrsOf.nix", "freeform-unstr-dep-str.nix", "define-value-string.nix"),
    ok("free.xxx.foo", 10, "freeform-submodules.nix"),
    ok("free.yyy.bar", 10, "freeform-submodules.nix"),
    ok("number.int", 42, "freeform-attrsof-either.nix"),
    # types.anything: attribute sets merge recursively, other values must be equal, properties apply
    ok("value", {"foo": None, "l1": {"foo": None, "l2": {"foo": None, "l3": {"foo": None}}}},
       "types-anything/nested-attrs.nix"),
    fails("value", r"The option .* has conflicting definition values", "types-anything/lists.nix"),
    ok("value.bool", False, "types-anything/equal-atoms.nix"),
    ok("value.float", 0.1, "types-anything/equal-atoms.nix"),
    ok("value.list", [1, "a", {"x": None}], "types-anything/equal-atoms.nix"),
    ok("value", {"mkiftrue": {}, "mkdefault": 1, "mkmerge": {}, "mkbefore": True,
                 "nested": {"foo": 1, "bar": {"baz": "baz"}}}, "types-anything/mk-mods.nix"),
    # the empty value of a type is the value of an attribute whose only definition is `mkIf false`
    ok("list.a", [], "emptyValues.nix"),
    ok("attrs.a", {}, "emptyValues.nix"),
    ok("null.a", None, "emptyValues.nix"),
    ok("submodule.a", {}, "emptyValues.nix"),
    fails("int.a", NO_VALUE.format("int.a"), "emptyValues.nix"),
    fails("nonEmptyList.a", NO_VALUE.format("nonEmptyList.a"), "emptyValues.nix"),
    # ... and of an option without definitions or default
    ok("list", [], "defaults.nix"),
    ok("attrs", {}, "defaults.nix"),
    ok("null", None, "defaults.nix"),
    ok("unique", [], "defaults.nix"),
    ok("coercedTo", [], "defaults.nix"),
    fails("int", NO_VALUE.format("int"), "defaults.nix"),
    ok("result", "ok", "defaults.nix"),
    # types.unique
    fails("examples.merged.a", r"The option .examples\.merged. is defined multiple times while it.s expected to "
                               r"be unique", "types-unique.nix"),
    fails("examples.merged.a", r"We require a single definition, because seeing the whole value at once helps us "
                               r"maintain critical invariants of our system.", "types-unique.nix"),
    fails("examples.badLazyType.a", r"A definition for option .examples\.badLazyType\.a. is not of type .string.",
          "types-unique.nix"),
    ok("examples.override.b", "bee", "types-unique.nix"),
    # types.raw
    ok("unprocessedNestingEvaluates.success", True, "raw.nix"),
    ok("processedToplevel", 10, "raw.nix"),
    fails("multiple", r"The option .multiple. is defined multiple times", "raw.nix"),
    ok("priorities", "bar", "raw.nix"),
    # an option cannot also be a set of options
    fails("set", r"The option .set. in module .*/declare-set.nix. would be a parent of the following options, but "
                 r"its type .attribute set of signed integer. does not support nested options.\n\s*- option[(]s[)] "
                 r"with prefix .set.enable. in module .*/declare-enable-nested.nix.",
          "declare-set.nix", "declare-enable-nested.nix"),
    fails("result", r"In module .*/options-type-error-typical.nix: expected an option declaration at option path "
                    r".result. but got an attribute set with type option-type", "options-type-error-typical.nix"),
    fails("result.here", r"In module .*/options-type-error-typical-nested.nix: expected an option declaration at "
                         r"option path .result.here. but got an attribute set with type option-type",
          "options-type-error-typical-nested.nix"),
    fails("group.enable", r"The option .group..*would be a parent of the following options, but its type "
                          r".<no description>. does not support nested options.\n\s*- option.s. with prefix "
                          r".group.enable..*", "merge-typeless-option.nix"),
    # a module that is a property; modules deduplicated by key
    ok("enable", True, "declare-enable.nix", "define-enable-with-top-level-mkIf.nix"),
    ok("once.raw", "pear", "merge-module-with-key.nix"),
    ok("twice.raw", "pear\npear", "merge-module-with-key.nix"),
    # addCheck
    ok("v1CheckedPass", 0, "add-check.nix"),
    fails("v1CheckedFail", r"A definition for option .* is not of type .signed integer.*", "add-check.nix"),
    ok("v2checkedPass", True, "add-check.nix"),
    fails("v2checkedFail", r"A definition for option .* is not of type .attribute set of signed integer.*",
          "add-check.nix"),
    # option name suggestions
    fails("set", r"Did you mean .set\.enable.\?", "error-typo-nested.nix"),
    fails("", r"Did you mean .set.\?", "error-typo-outside-with-nested.nix",
          nixus=r"Did you mean .set.(, .\w+.)* or .\w+.\?"),  # and options of the fleet core
    fails("", r"Did you mean .bar., .baz. or .foo.\?", "error-typo-multiple-suggestions.nix"),
    fails("", r"Did you mean .enable., .ebe. or .enabled.\?", "error-typo-large-attrset.nix"),
    fails("services.myservice", r"Did you mean .services\.myservice\.port. or .services\.myservice\.enable.\?",
          "error-typo-submodule.nix"),
    fails('services.nginx.virtualHosts."example.com"',
          r"Did you mean .services\.nginx\.virtualHosts\.\"example\.com\"\.ssl\.certificate. or "
          r".services\.nginx\.virtualHosts\.\"example\.com\"\.ssl\.certificateKey.\?", "error-typo-deeply-nested.nix"),
    # --- our own cases ---------------------------------------------------------------------------
    # the basic types, merged from two modules where they allow it
    ok("ok", {"attrs": {"a": 1, "b": 2, "nested": {"y": 2}}, "attrsOf": {"a": 1, "b": 2}, "colons": "/bin:/usr/bin",
              "commas": "a,b", "either": "str", "enum": "b", "float": 0.5, "lines": "first\nsecond",
              "listOf": [1, 2, 3], "nonEmptyStr": "x", "nullOr": None, "nullOrValue": 3, "number": 1,
              "oneOf": [True], "path": "/etc/hosts", "port": 8080, "s8": -128, "str": "same",
              "strMatching": "abc-1", "u8": 255, "uniq": ["only"], "unspecified": {"a": 1, "b": 2}},
       "own/types-merge.nix"),
    *(fails(f"bad.{name}", NOT_OF_TYPE + f" .{description}.", "own/types-errors.nix")
      for name, description in [("port", r"16 bit unsigned integer; between 0 and 65535 \(both inclusive\)"),
                                ("float", "floating point number"), ("str", "string"),
                                ("nonEmptyStr", "non-empty string"), ("path", "absolute path"),
                                ("enum", r"one of \"a\", \"b\""), ("either", "signed integer or boolean"),
                                ("strMatching", r"string matching the pattern \[a-z\]\+"),
                                ("listOf", "signed integer"), ("attrsOf", "boolean")]),
    fails("bad.conflict", r"The option .bad.conflict. has conflicting definition values", "own/types-errors.nix"),
    fails("bad.bool", r"The option .bad.bool. has conflicting definition values", "own/types-errors.nix"),
    fails("bad.uniq", r"The option .bad.uniq. is defined multiple times while it's expected to be unique",
          "own/types-errors.nix"),
    # mkOverride and its named levels, mkOrder/mkBefore/mkAfter, in options, attrsOf and submodules
    ok("ok", {"attrsOf": {"a": 1, "b": 20, "c": 3}, "declaredDefault": 5, "defaultVsPlain": 2,
              "forceVsPlain": "forced", "lines": "early\nplain\nafter", "list": ["before", "plain", "x"],
              "merged": ["m1", "m2", "m0"], "optionDefault": [5, 7], "override": "ten",
              "sub": {"x": {"other": 1, "value": "forced"}, "y": {"other": 2, "value": "default"}},
              "twoDefaults": ["b", "a"]}, "own/priorities.nix"),
    # submodules: `name`, defaults from their own config, freeform, lists of submodules
    ok("machines", {"db": {"hostName": "database", "port": 5432, "url": "ssh://database:5432"},
                    "web": {"hostName": "web.example.org", "port": 22, "url": "ssh://web.example.org:22"}},
       "own/submodules.nix"),
    ok("services", [{"enable": True, "name": "a"}, {"enable": False, "name": "b"}], "own/submodules.nix"),
    ok("settings", {"extra": "yes", "level": 3}, "own/submodules.nix"),
    ok("summary", ["ssh://database:5432", "ssh://web.example.org:22"], "own/submodules.nix"),
    # renamed, aliased and removed options
    ok("new.name", 5, "own/renames.nix"),
    ok("target", ["via alias", "direct"], "own/renames.nix"),
    fails("gone", r"The option .gone. can no longer be used since it's been removed. Use .new.name. instead.",
          "own/renames.nix"),
    # read-only options
    ok("once", 1, "own/read-only.nix"),
    fails("withDefault", r"The option .withDefault. is read-only, but it's set multiple times. Definition values:",
          "own/read-only.nix"),
    # `mkIf false` does not make an undeclared option exist
    fails("enable", r"The option .undeclared. does not exist", "own/mkif-false-undeclared.nix"),
    fails("enable", r"The option .undeclared. does not exist", "own/mkif-false-undeclared-nested.nix"),
]


# --- running both sides ------------------------------------------------------------------------

def _real_nix(case: Case) -> Result:
    """`config.<attr>` from the real nixpkgs lib, evaluated as modules.sh does."""
    lib = nixpkgs_lib()
    modules = " ".join(str(p) for p in case.paths())
    expr = f"import {lib}/tests/modules/default.nix {{ lib = import {lib}; modules = [ {modules} ]; }}"
    attr = "config" + (f".{case.attr}" if case.attr else "")
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", "--show-trace",
                           "-E", expr, "-A", attr], capture_output=True, text=True, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _selected(session: pytest.Session) -> list[Case]:
    """The cases that this pytest run will check."""
    params = [getattr(item, "callspec", None) for item in session.items]
    return [p.params["case"] for p in params if p is not None and isinstance(p.params.get("case"), Case)]


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[dict[Case, tuple[Future, Future]]]:
    """Both sides of every selected case, started at once: Nix in threads, nixus in forked processes."""
    tmp = tmp_path_factory.mktemp("conformance")
    cases = _selected(request.session)
    runs: dict[tuple, tuple[Future, Future]] = {}
    with forked_nixus(tmp, __name__) as forks, ThreadPoolExecutor((os.cpu_count() or 1) + 1) as threads:
        for case in cases:
            key = (case.files, case.attr)  # two regexes for one evaluation share it
            if key not in runs:
                fleet = tmp / f"fleet-{len(runs)}.nix"
                fleet.write_text("{ imports = [ " + " ".join(str(p) for p in case.paths()) + " ]; }\n")
                runs[key] = (threads.submit(_real_nix, case), forks.submit(nixus_eval, fleet, case.attr))
        yield {case: runs[(case.files, case.attr)] for case in cases}
        for futures in runs.values():
            for future in futures:
                future.cancel()


@pytest.mark.parametrize("case", CASES)
def test_nixus_evaluates_like_nixpkgs_lib(case: Case, outcomes: dict[Case, tuple[Future, Future]]) -> None:
    real_run, nixus_run = outcomes[case]
    real, ours = real_run.result(timeout=EVAL_TIMEOUT), nixus_run.result(timeout=EVAL_TIMEOUT)
    assert "Traceback" not in ours.err, ours.err
    if isinstance(case.expect, Value):
        assert real.code == 0, real.err
        assert json.loads(real.out) == case.expect.value
        assert ours.code == 0, ours.err
        assert json.loads(ours.out) == json.loads(real.out)
    else:
        assert real.code != 0, real.out
        assert re.search(case.expect.pattern, real.err), real.err
        assert ours.code == 1, ours.out
        assert re.search(case.expect.nixus or case.expect.pattern, ours.err), ours.err
