"""nixpkgs' own `lib/tests/modules.sh`, every check of it, run through nixus.

The checks are read from the script itself, as bash would run them: each `checkConfigOutput
REGEX ATTR FILES...` and `checkConfigError REGEX ATTR FILES...` with bash's quoting (`shlex`),
the positional parameters that `set -- ...` gives `"$@"`, brace expansion, and the variables a
check is run with (`STRICT_EVAL=1 check...`). Any other command of the script is one this file
knows does not change a check, or the test says the script changed.

Each check evaluates a fleet.nix that imports the check's files (`nixus eval ATTR --json`) and
asserts what modules.sh asserts: for a value, that its JSON (as Nix prints it) matches the
extended regex on some line; for an error, that nixus stops with a user error (exit 1, no
traceback) whose message matches the Perl regex, with the infinite-recursion hint exactly where
modules.sh requires it. Checks nixus cannot run are in NOT_RUNNABLE with the reason; checks it
runs but fails are in FAILING (strict xfail, so a fixed one is reported).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import Result, nixpkgs_lib
from forked_nixus import EVAL_TIMEOUT, forked_nixus, nixus_eval

pytestmark = pytest.mark.nix

CHECKS = ("checkConfigOutput", "checkConfigError", "checkExpression")
# Top-level commands of modules.sh that decide nothing about a check's arguments or outcome.
HARMLESS = {"set", "shopt", "cd", "cat", "if", "fi", "exit", "DIR", "pass", "fail"}
HINT = "if you get an infinite recursion here"  # modules.sh's globalErrorLogCheck


@dataclass(frozen=True)
class Check:
    """One check of modules.sh: `kind` is its function, `env` the variables it runs with."""

    line: int
    kind: str
    regex: str
    attr: str
    files: tuple[str, ...]
    env: frozenset[str] = field(default=frozenset())
    id: str = ""

    def paths(self) -> list[Path]:
        return [(modules_dir() / f).resolve() for f in self.files]


def modules_dir() -> Path:
    return nixpkgs_lib() / "tests" / "modules"


# --- reading modules.sh ----------------------------------------------------------------------

def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Top-level command lines with their line numbers: continuations joined, function bodies and
    here-documents left out."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i]
        i += 1
        if re.match(r"^[\w-]+\(\) *\{\s*$", line):  # a function definition, to its closing brace
            while i < len(lines) and lines[i] != "}":
                i += 1
            i += 1
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i]
            i += 1
        heredoc = re.search(r"<<(\w+)\s*$", line)
        if heredoc:
            while i < len(lines) and lines[i] != heredoc.group(1):
                i += 1
            i += 1
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def _braces(word: str) -> list[str]:
    """Bash's brace expansion of one word (`./d/{a.nix,b.nix}`), as modules.sh uses it."""
    found = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not found:
        return [word]
    return [w for alt in found.group(1).split(",")
            for w in _braces(word[:found.start()] + alt + word[found.end():])]


def parse(text: str) -> list[Check]:
    """Every check of modules.sh, in its order, with the arguments bash would pass it."""
    positional: list[str] = []
    checks: list[Check] = []
    seen: dict[str, int] = {}
    for number, line in _logical_lines(text):
        # (shlex keeps a backslash before ` in double quotes, where bash drops it: in a regex both
        # mean a backquote.)
        words = shlex.split(line, comments=True)
        env = []
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            env.append(words.pop(0).split("=", 1)[0])
        if not words:
            continue
        command, args = words[0], [w for word in words[1:] for w in
                                   (positional if word == "$@" else _braces(word))]
        if command == "set" and args[:1] == ["--"]:
            positional = args[1:]
        elif command in CHECKS:
            if command == "checkExpression":
                regex, attr, files = "", "", tuple(args)
            else:
                regex, attr, files = args[0], args[1], tuple(args[2:])
            key = f"{attr} {' '.join(f.removeprefix('./') for f in files)}"
            seen[key] = seen.get(key, 0) + 1
            ident = key if seen[key] == 1 else f"{key} #{seen[key]}"
            checks.append(Check(number, command, regex, attr, files, frozenset(env), ident))
        elif command not in HARMLESS and (env[:1] or [None])[0] not in HARMLESS:
            raise AssertionError(f"modules.sh:{number}: a command this test does not know: {line}")
    return checks


def _all_checks() -> list[Check]:
    return parse((nixpkgs_lib() / "tests" / "modules.sh").read_text())


# --- what nixus cannot run, and what it runs but fails ---------------------------------------

OPTIONS = "reads `options.*' metadata, which `nixus eval' does not print"
NOT_CONFIG = "checkExpression evaluates a Nix file of its own, not a module evaluation"
REAL_LIB_FAILS = "fails with the real lib under Nix 2.8 (newer Nix needed)"
ABORT_ON_WARN = "needs `--option abort-on-warn', which Nix 2.8 does not have"

# Checks that cannot run, by id (`ATTR FILES...`), with why; `options.*` checks are found by
# their attribute. Each REAL_LIB_FAILS entry is checked to still fail with the real lib.
NOT_RUNNABLE: dict[str, str] = {
    **{f"config.filesetCardinal.ok{i} fileset.nix": REAL_LIB_FAILS for i in (2, 3, 4)},
    **{f"config.{attr} freeform-deprecated-malicous.nix freeform-deprecated-malicous-{wrong}.nix #2": ABORT_ON_WARN
       for attr in ("either.int", "eitherBehindNullor.int", "oneOf.int", "number.str")
       for wrong in ("wrong", "wrong2")},
}

# What nixus does not do yet, by the checks that need it.
EVAL_MODULES = ("what a module system inside a module passes on: moduleType, extendModules, the class of a "
                "submoduleWith to modules from files, class checks, `specialArgs' as an argument")
OPTIONS_ARG = ("the `options' argument carries isDefined, value, default, type name and description, "
               "declarations and files (not definitions, highestPrio, declarationPositions, valueMeta, "
               "getSubOptions), and a nested option's name waits for its parent's definitions")
V2_MERGE = "the real lib's v2 merge checks (checkV2MergeCoherence) across nixus's own types"
ABORT = ("a definition nixpkgs never evaluates (or only for an error message) aborts nixus's Nix round: "
         "the driver serializes it, and `abort' cannot be caught")
DERIVATION_ATTRS = "a set with outPath, which nixus takes for a set to merge"
MK_DEFINITION = "lib.mkDefinition: a declaration's default is in the declaring file, not the module's `_file'"
ANYTHING = "types.anything merging of paths and Nix functions"
OPTION_TYPE = "options whose types come from config (types.optionType, optionDeclaration values)"
FLEET_CORE = "the fleet core's own options are part of config (`nodes', `lock', ...)"
NIX_TRACE = "the module argument that modules wait for through `imports' is not named (nixpkgs' error context)"
FILESET = ("types.fileset: the driver serializes every file set of a default, reading files with "
           "builtins.readFileType, which Nix 2.8 lacks")
PATHS = "`nixus eval' prints a path as itself, Nix copies it to the store"
GVARIANT = "lib.gvariant's types"

# Checks nixus runs but fails, by id, with the missing feature (strict xfail).
FAILING: dict[str, str] = {check: reason for reason, checks in {
    OPTIONS_ARG: [
        'config.result test-mergeAttrDefinitionsWithPrio.nix',
        'config.okChecks types-attrTag.nix',
        'config.submodule.internalFiles.0 submoduleFiles.nix',
        'config.set.enable define-option-dependently-nested.nix declare-enable-nested.nix declare-int-positive-value-nested.nix',
        'config.set.value define-option-dependently-nested.nix declare-enable-nested.nix declare-int-positive-value-nested.nix',
        'config.set.value define-option-dependently-nested.nix declare-int-positive-value-nested.nix',
        'config.lazyResult lazy-attrsWith.nix',
        'config.result name-merge-attrsWith-1.nix',
        'config.fooDeclarations.0 freeform-submodules.nix',
        'config.optionsResult functionTo/submodule-options.nix',
        'config.result doRename-condition.nix doRename-condition-migrated.nix',
        'config.submoduleLine38.submodDeclLine45.0.line declaration-positions.nix',
        'config.submoduleLine38.submodDeclLine45.0.file declaration-positions.nix',
        'config.attrsOfResult types-valueMeta.nix',
        'config.listOfResult types-valueMeta.nix',
        'config.listResult composed-types-valueMeta.nix',
        'config.mergedListResult composed-types-valueMeta.nix',
        'config.argv attrList-valueMeta-definitions-file-diagnostic-forwarding.nix',
    ],
    GVARIANT: [
        'config.assertion gvariant.nix',
    ],
    EVAL_MODULES: [
        'config.result specialArgs-lib.nix',
        'config.result deferred-module-error.nix',
        'config.resultFoo declare-variants.nix define-variant.nix',
        'config.resultFooBar declare-variants.nix define-variant.nix',
        'config.resultFooFoo declare-variants.nix define-variant.nix',
        'config.result options-type-error-configuration.nix',
        'config.sub.specialisation.value extendModules-168767-imports.nix',
        'config.sub.nixosFail.config class-check.nix',
        'config.sub.mergeFail.config class-check.nix',
        'config.foo import-error-submodule.nix',
    ],
    FLEET_CORE: [
        'config.wrong1 error-mkOption-in-config.nix',
        'config.nest.wrong2 error-mkOption-in-config.nix',
        'config.nodes.foo.settingsDict.c deferred-module.nix',
        'config.nodes.foo.bottom deferred-module.nix',
        'config freeform-attrsOf.nix',
        'config error-typo-outside-with-nested.nix',
    ],
    FILESET: [
        'config.filesetCardinal.ok1 fileset.nix',
        'config.filesetCardinal.ok5 fileset.nix',
        'config.filesetCardinal.err1 fileset.nix',
        'config.filesetCardinal.err2 fileset.nix',
        'config.filesetCardinal.err3 fileset.nix',
        'config.filesetCardinal.err4 fileset.nix',
    ],
    PATHS: [
        'config.nullableValue.path types.nix',
    ],
    ABORT: [
        'config.enable define-enable-abort.nix',
        'config.enable define-enable-abort.nix #2',
        'config.assertions declare-attrList.nix',
        'config.attrListIntStrict.badValue declare-attrList.nix',
        'config.attrListStrict.badListElem declare-attrList.nix',
        'config.attrListStrict.badString declare-attrList.nix',
        'config.attrListStrict.badListString declare-attrList.nix',
    ],
    NIX_TRACE: [
        'config.enable declare-enable.nix define-enable-with-custom-arg.nix define-_module-args-custom.nix import-custom-arg.nix',
    ],
    DERIVATION_ATTRS: [
        'config.value.outPath types-anything/attrs-coercible.nix',
    ],
    ANYTHING: [
        'config.value.path types-anything/equal-atoms.nix',
        'config.applied.multiple-lambdas types-anything/functions.nix',
        'config.applied.merging-lambdas.x types-anything/functions.nix',
        'config.applied.merging-lambdas.y types-anything/functions.nix',
    ],
    OPTION_TYPE: [
        'config.anOption option.nix',
        'config.aBadOptionDef option.nix',
        'config.theOption.int optionTypeMerging.nix',
        'config.theOption.str optionTypeMerging.nix',
        'config.theOption.nested optionTypeFile.nix',
    ],
    MK_DEFINITION: [
        'config.conflict mkDefinition.nix',
    ],
    V2_MERGE: [
        'config.adhocFail.foo v2-check-coherence.nix',
        'config.adhocOuterFail.bar v2-check-coherence.nix',
        'config.eitherLeftFail v2-check-coherence.nix',
        'config.eitherRightFail v2-check-coherence.nix',
        'config.coercedFromFail.bar v2-check-coherence.nix',
        'config.coercedToFail.foo v2-check-coherence.nix',
        'config.addCheckNested.foo v2-check-coherence.nix',
        'config.adhocFail.foo v2-check-coherence.nix #2',
    ],
}.items() for check in checks}


def not_runnable(check: Check) -> str | None:
    """Why nixus cannot run `check`, if it cannot."""
    if check.kind == "checkExpression":
        return NOT_CONFIG
    if check.attr.startswith("options.") or check.attr == "options":
        return OPTIONS
    return NOT_RUNNABLE.get(check.id)


def _param(check: Check) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=FAILING[check.id])] if check.id in FAILING else []
    return pytest.param(check, id=check.id, marks=marks)


def _runnable() -> list[object]:
    return [_param(c) for c in _all_checks() if not_runnable(c) is None]


# --- running ---------------------------------------------------------------------------------

def real_lib(check: Check) -> Result:
    """`check` with the real lib, exactly as modules.sh's evalConfig runs it."""
    nix_args = ["--option", "abort-on-warn", "true"] if "ABORT_ON_WARN" in check.env else []
    nix_args += ["--strict"] if "STRICT_EVAL" in check.env else []
    script = f"import ./default.nix {{ modules = [ {' '.join(check.files)} ];}}"
    proc = subprocess.run(["nix-instantiate", "--timeout", "1", "--eval-only", "--show-trace", "--read-write-mode",
                           "--json", *nix_args, "-E", script, "-A", check.attr],
                          cwd=modules_dir(), capture_output=True, text=True, timeout=EVAL_TIMEOUT)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def passes(check: Check, result: Result, *, nixus: bool) -> tuple[bool, str]:
    """Whether `result` passes `check` as modules.sh judges it, and what it printed. Of `nixus`,
    the JSON is printed again as Nix prints JSON, and with ABORT_ON_WARN a warning fails."""
    if check.kind == "checkConfigOutput":
        out = result.out
        if nixus and result.code == 0:
            out = json.dumps(json.loads(out), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        warned = nixus and "ABORT_ON_WARN" in check.env and re.search("warning", result.err, re.I) is not None
        ok = result.code == 0 and not warned and any(re.search(check.regex, line) for line in out.splitlines())
        return ok, f"exit {result.code}\n{out}\n{result.err}"
    hinted = re.search(HINT, result.err, re.I) is not None
    ok = (result.code != 0 and hinted == ("REQUIRE_INFINITE_RECURSION_HINT" in check.env)
          and re.search(check.regex, result.err) is not None)
    return ok, f"exit {result.code}\n{result.err}"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future]]:
    """nixus's run of every runnable check, all started at once in forked processes."""
    tmp = tmp_path_factory.mktemp("modules-sh")
    runs: dict[tuple, Future] = {}
    out: dict[str, Future] = {}
    with forked_nixus(tmp, __name__) as forks:
        for check in _all_checks():
            if not_runnable(check) is not None:
                continue
            key = (check.files, check.attr)
            if key not in runs:
                fleet = tmp / f"fleet-{len(runs)}.nix"
                fleet.write_text("{ imports = [ " + " ".join(str(p) for p in check.paths()) + " ]; }\n")
                runs[key] = forks.submit(nixus_eval, fleet, check.attr.removeprefix("config").lstrip("."))
            out[check.id] = runs[key]
        yield out
        for future in runs.values():
            future.cancel()


@pytest.mark.parametrize("check", _runnable())
def test_nixus_passes_modules_sh_check(check: Check, outcomes: dict[str, Future]) -> None:
    ours = outcomes[check.id].result(timeout=EVAL_TIMEOUT)
    assert "Traceback" not in ours.err, ours.err
    if check.kind == "checkConfigError":
        assert ours.code == 1, ours.out + ours.err
    ok, shown = passes(check, ours, nixus=True)
    assert ok, f"modules.sh:{check.line} expects {check.regex!r}; nixus gave {shown}"


def test_every_check_is_read_from_modules_sh() -> None:
    """The parser finds every call of a check function in the script, none twice."""
    text = (nixpkgs_lib() / "tests" / "modules.sh").read_text()
    calls = len(re.findall(rf"^(?:\w+=\S+ )*({'|'.join(CHECKS)}) ", text, re.M))
    checks = _all_checks()
    assert len(checks) == calls
    assert len({c.id for c in checks}) == len(checks)


def test_lists_name_checks_that_exist() -> None:
    """NOT_RUNNABLE and FAILING name checks of modules.sh, and no check is in both."""
    ids = {c.id for c in _all_checks()}
    assert set(NOT_RUNNABLE) <= ids, set(NOT_RUNNABLE) - ids
    assert set(FAILING) <= ids, set(FAILING) - ids
    assert not set(NOT_RUNNABLE) & set(FAILING)


def test_checks_listed_as_failing_with_the_real_lib_still_do() -> None:
    """A check listed because the real lib fails it under this Nix is reported once it passes."""
    listed = [c for c in _all_checks() if NOT_RUNNABLE.get(c.id) in (REAL_LIB_FAILS, ABORT_ON_WARN)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as threads:
        results = list(threads.map(real_lib, listed))
    now_passing = [c.id for c, r in zip(listed, results) if passes(c, r, nixus=False)[0]]
    assert not now_passing, f"these pass with the real lib now, run them: {now_passing}"
