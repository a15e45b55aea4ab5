"""The fleet.nix bridge: Nix modules evaluated by nixus's module system in a few Nix runs.

Each round runs `nix-instantiate` once (nix/driver.nix) over every `.nix` module, with a `lib`
whose module functions build plain data (nix/lib.nix) and with what is known of `config` so far.
Values that need an unknown part of `config` come back pending; nixus evaluates all it can,
then runs another round with more of `config` known, until no round makes progress. A round
serializes only what nixus asks for: new modules and applications, and the values it needed that
came back pending. Known values never change, so one evaluation lives through all rounds, and
a value is decoded once. What is still pending at the end (a `throw`, options that need each
other) fails only when read, as in Nix, with the Nix error behind it. Nix functions (submodule
functions, `apply`, NixOS modules in `configuration`) stay in Nix as references.
"""

from __future__ import annotations

import contextvars
import copy
import json
import re
import subprocess
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import settings
from ..evaluate.lib import ints, non_empty_list_of
from ..evaluate import optiontypes as t
from ..evaluate.declarations import option_type
from ..evaluate.errors import EvalCycle, EvalError, SourceError, show_option
from ..evaluate.location import Loc, LocatedDict
from ..evaluate.modules import Evaluation, ModuleRef, Option
from ..evaluate.options import MISSING, OptionDecl
from ..evaluate.properties import If, Lazy, Merge, Order, Override, Property, force, int_priority, lazy
from ..evaluate.renames import mkAliasOptionModule, mkRemovedOptionModule, mkRenamedOptionModule
from ..evaluate.submodule import DeferredModule, DeferredModuleType, Submodule
from ..nixlang import NixPath, NixValue, not_nix, showing
from . import nixstart
from .nixstart import DRIVER

MAX_ROUNDS = 50
NOT_KNOWN = "nixus: value not known yet"  # the driver's `throw` for a part of config not known yet
SEES_UNKNOWN = "nixus: tryEval may see unknown config"  # the driver's trace when results may still change
OPTIONS_WANTED = re.compile(r"trace: nixus: options wanted (\[.*\])$", re.M)  # a module reads `options`
# A module reads a node's configuration (`config.nodes.<n>.configuration.networking.public`).
CONFIGURATION_WANTED = re.compile(r"trace: nixus: configuration wanted (\[.*\])$", re.M)


class Pending(Exception):
    """A value needs a part of `config` or a Nix application that the next round provides."""


class _FromNix(Lazy):
    """The Nix value at `ref` in the driver's structure: known once a round has serialized it (a module
    file, an application, or a value that `tryEval` could not evaluate yet)."""

    __slots__ = ()

    def __init__(self, ref: tuple, file: Loc) -> None:
        super().__init__(partial(_from_nix, ref, file))


def _from_nix(ref: tuple, file: Loc) -> Any:
    return decode(_session().result(ref), file)


class _Later(Lazy):
    """A Nix value that the driver serializes only when nixus needs it (the content of a `mkIf false`)."""

    __slots__ = ()

    def __init__(self, ref: tuple) -> None:
        super().__init__(partial(_serialize_later, ref))


def _serialize_later(ref: tuple) -> Any:
    return _session().apply(("value", ref))


@dataclass(frozen=True, slots=True)
class NixRef(NixValue):
    """A Nix value reached by a path in the driver's output (a function, a derivation, a special argument)."""

    ref: tuple
    what: str = "function"

    def nix(self) -> str:
        if showing():
            return f"<{self.what}>"
        written = _refs_as.get()
        if written is None:
            raise not_nix(f"a Nix {self.what} from a .nix file can only be written into a rendered module")
        return written(self.ref)


# While a node is rendered: how a reference into the driver's structure is written as Nix.
_refs_as: contextvars.ContextVar[Callable[[tuple], str] | None] = contextvars.ContextVar(
    "nixus_refs_as", default=None)


@contextmanager
def refs_written_as(write: Callable[[tuple], str]) -> Iterator[None]:
    """Write each Nix reference as `write(ref)`: an expression that gets the value back at build
    time from the driver, evaluated with `build_input()` (see the driver's `forBuild`)."""
    token = _refs_as.set(write)
    try:
        yield
    finally:
        _refs_as.reset(token)


def build_input() -> dict:
    """The driver's input that gives back, at build time, every Nix value of the current fleet
    evaluation: its files and applications, with the config and options its last round knew."""
    s = _session()
    return {"files": s.files, "known": s.known, "requests": [_request_json(r) for r in s.requests],
            "options": s.options, "configurations": s.configurations}


class NixFunction(NixRef, ModuleRef):
    """A Nix function: applied by the next Nix round when nixus needs its result."""

    def apply_module(self, ev: Evaluation) -> Any:
        _session().evaluations[ev.prefix] = ev  # whose `options` this module may read
        return _session().apply(("module", self.ref, *_module_args(ev)))

    def location(self) -> Loc:
        return Loc("<nix function>")

    def __call__(self, arg: Any) -> Any:
        # Forced: a result that is not known yet must not pass for a value (e.g. in a type check).
        return force(_session().apply(("call", self.ref, json.dumps(encode_known(arg)[0], sort_keys=True))))


_current: contextvars.ContextVar[NixSession | None] = contextvars.ContextVar("nixus_nix_session", default=None)


def _session() -> NixSession:
    s = _current.get()
    if s is None:
        raise EvalError("a .nix module was used outside of a fleet evaluation")
    return s


def load_nix_module(path: Path, ev: Evaluation) -> Any:
    """The module that a `.nix` file evaluates to (pending until a Nix round has read the file):
    a function applied with the module arguments of the evaluation that imports it."""
    if not ev.prefix:
        return _session().file_module(path.resolve())
    _session().evaluations[ev.prefix] = ev  # whose `options` this module may read
    return _session().apply(("file", str(path.resolve()), *_module_args(ev)))


def _module_args(ev: Evaluation) -> tuple:
    """What the driver needs to give a module of evaluation `ev` its arguments."""
    special = tuple(sorted((k, v.ref) for k, v in ev.special_args.items() if isinstance(v, NixRef)))
    return ev.prefix, ev.special_args.get("name"), special, ev.partial


class NixSession:
    """All Nix rounds of one fleet evaluation: files, requests, known config and results."""

    def __init__(self, first: Path | None = None) -> None:
        """`first`: the fleet file, whose Nix starts right away (while nixus loads its Python modules)."""
        self.files: list[str] = [str(first)] if first is not None else []
        self.requests: list[tuple] = []
        self.request_index: dict[tuple, int] = {}
        self.values: dict[tuple, _FromNix] = {}  # by ref: each module file and application, decoded once
        self.results: dict[tuple, Any] = {}  # by ref: what a round serialized (not what came back pending)
        self.asked: set[tuple] = set()  # every ref a round was asked for
        self.last_asked: set[tuple] = set()  # the refs of the last round (with the config known now)
        # Once Nix code may have caught an unknown value (`tryEval`), known results can change: every
        # round then serializes everything anew, and results of the rounds before are stale.
        self.replay = False
        self.stale = False
        self.known: Any = {"__nixus": "pending"}
        self.blocked: dict[tuple, None] = {}  # the refs this evaluation needed and does not have
        self.together: dict[tuple, list[tuple]] = {}  # a pending ref: all pending in its list or set
        self.evaluations: dict[tuple, Evaluation] = {}  # by prefix: the evaluations Nix modules are applied in
        self.options_wanted: dict[tuple, None] = {}  # the prefixes whose `options` a Nix module read
        self.options: dict[str, Any] = {}  # the option trees sent, by the JSON of their prefix
        self.readable: dict[tuple, Evaluation] = {}  # by path: the configurations Nix code may read
        self.configurations_wanted: dict[tuple, None] = {}  # the paths of those it read
        self.configurations: dict[str, Any] = {}  # what was sent of them, by the JSON of their path
        self.settled = False  # no round can make progress: what is still pending fails when read
        self.stuck: list[tuple] = []  # the options still pending when the rounds settled
        self.diagnoses: dict[tuple, str | None] = {}  # by pending value: its Nix error, None for a cycle
        self.rounds = 0
        self._next: subprocess.Popen | None = None  # the next round's Nix, loading while nixus works
        if first is not None:
            self._next = self._start()

    def file_module(self, path: Path) -> Any:
        key = str(path)
        if key not in self.files:
            self.files.append(key)
        return self._value(("files", self.files.index(key)), Loc(key))

    def apply(self, request: tuple) -> Any:
        index = self.request_index.get(request)
        if index is None:
            index = self.request_index[request] = len(self.requests)
            self.requests.append(request)
        return self._value(("apps", index), Loc("<nix function>"))

    def pending_together(self, refs: list[tuple]) -> None:
        """When one of `refs` is needed, the next round asks for all of them."""
        for ref in refs:
            self.together[ref] = refs

    def _value(self, ref: tuple, file: Loc) -> _FromNix:
        found = self.values.get(ref)
        if found is None:
            found = self.values[ref] = _FromNix(ref, file)
        return found

    def result(self, ref: tuple) -> Any:
        """What a round serialized at `ref`; Pending until a round has (a failure once settled)."""
        if ref in self.results:
            return self.results[ref]
        if self.settled:
            if ref not in self.last_asked:  # a value first needed now: the config is complete
                self.run_round([ref])
                if ref in self.results:
                    return self.results[ref]
            raise self.failure(ref)
        self.blocked[ref] = None
        for other in self.together.get(ref, ()):
            if other not in self.results:
                self.blocked[other] = None
        raise Pending()

    @property
    def new_refs(self) -> bool:
        """Whether this evaluation needs something that no round was asked for yet."""
        return any(ref not in self.asked for ref in self.blocked)

    def run_round(self, want: list[tuple]) -> None:
        """One nix-instantiate over all files and requests, with the known config, serializing `want`."""
        self.rounds += 1
        if self.replay:
            want = list(dict.fromkeys([*self.values, *want]))  # the modules and applications, in full
            self.results, self.values, self.stale = {}, {}, False
        proc = self._instantiate(want=[list(r) for r in want])
        if proc.returncode != 0:
            raise SourceError(_nix_error(proc.stderr, self.files), files=self.files)
        if SEES_UNKNOWN in proc.stderr and not self.replay:
            self.replay = self.stale = True
        for wanted in OPTIONS_WANTED.findall(proc.stderr):
            self.options_wanted[tuple(json.loads(wanted))] = None
        for wanted in CONFIGURATION_WANTED.findall(proc.stderr):
            self.configurations_wanted[tuple(json.loads(wanted))] = None
        for ref, raw in zip(want, json.loads(proc.stdout)):
            if not (isinstance(raw, dict) and raw.get("__nixus") == "pending" and tuple(raw["ref"]) == ref):
                self.results[ref] = raw
        self.asked.update(want)
        self.last_asked = set(want)

    def settle(self, stuck: list[tuple]) -> None:
        """No more rounds: values still pending now fail when read, as a Nix error would."""
        self.settled, self.stuck = True, stuck
        self.stop_next()  # a late value or a diagnosis starts its own Nix

    def update_options(self) -> bool:
        """Encode the option trees Nix modules read (anew: their values become known round by
        round); whether any changed."""
        options = {_prefix_key(prefix): _encode(partial(_options_json, self.evaluations[prefix].options), prefix, [])
                   for prefix in self.options_wanted if prefix in self.evaluations}
        configurations = {_prefix_key(path): _encode(partial(_readable, self.readable[path], path), path, [])
                          for path in self.configurations_wanted if path in self.readable}
        changed = options != self.options or configurations != self.configurations
        self.options, self.configurations = options, configurations
        return changed

    def stop_next(self) -> None:
        """Stop the Nix started for a round that will not come."""
        if self._next is not None:
            self._next.kill()
            self._next.communicate()
            self._next = None

    def failure(self, ref: tuple) -> EvalError:
        """Why a value stayed pending: a Nix error (its own, or one that kept the config it needs
        unknown), else options that wait for each other."""
        suspects = [ref, *list(self.blocked)[:8]]
        message = next((m for r in suspects if (m := self._diagnose(r)) is not None), None)
        if message is not None:
            return SourceError(message, files=self.files)
        options = [p for p in self.stuck if p]
        if not options:
            return EvalCycle("infinite recursion encountered: the modules depend on `config' through Nix code "
                             "(their `imports', or which attributes they define)", ())
        shown = ", ".join(f"`{show_option(p)}'" for p in options[:8])
        return EvalCycle("infinite recursion encountered: these options depend on each other through Nix code "
                         f"and never get a value: {shown}", options[0])

    def _diagnose(self, ref: tuple) -> str | None:
        """The error of a pending value, unless it only waits for config: the driver's `tryEval` cannot
        tell a `throw` (or failed `assert`) from a part of config not known yet; Nix without it can."""
        if ref not in self.diagnoses:
            proc = self._instantiate(want=[], diagnose=list(ref))
            failed = proc.returncode != 0 and NOT_KNOWN not in proc.stderr
            self.diagnoses[ref] = _nix_error(proc.stderr, self.files) if failed else None
        return self.diagnoses[ref]

    def _instantiate(self, **extra: Any) -> subprocess.CompletedProcess:
        """Run the driver on the session's files, requests and known config (one started ahead if any)."""
        data = {"files": self.files, "known": self.known, "requests": [_request_json(r) for r in self.requests],
                "options": self.options, "configurations": self.configurations, **extra}
        proc, self._next = self._next or self._start(), None
        out, err = proc.communicate(json.dumps(data))
        if not self.settled and proc.returncode == 0:
            self._next = self._start()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _start(self) -> subprocess.Popen:
        """A Nix for the next round: it loads nixpkgs lib and parses the fleet files, then reads its
        input from stdin."""
        return nixstart.start(nixstart.round_command(self.files, settings.nixpkgs_lib()))


def _request_json(r: tuple) -> dict:
    if r[0] in ("module", "file"):
        what = {"ref": list(r[1])} if r[0] == "module" else {"path": r[1]}
        return {"kind": r[0], **what, "prefix": list(r[2]), "name": r[3],
                "specialArgs": {k: list(ref) for k, ref in r[4]}, "lenient": r[5]}
    if r[0] == "value":
        return {"kind": "value", "ref": list(r[1])}
    return {"kind": "call", "ref": list(r[1]), "arg": json.loads(r[2])}


def _nix_error(stderr: str, files: list[str]) -> str:
    keep = [line for line in stderr.splitlines()
            if str(DRIVER.parent) not in line and line.strip() and not line.startswith("(use '--show-trace'")]
    text = "\n".join(keep[-12:]) or stderr.strip()
    return f"Nix could not evaluate {' and '.join(files) or 'the fleet'}:\n{text}"


# --- decoding the driver's output ---------------------------------------------------------

def decode(v: Any, file: Loc) -> Any:
    """Driver output → module-system values (properties, declarations, types, references)."""
    kind = type(v)
    if kind is list:
        _pending_together(v)
        return [decode(x, file) if type(x) in _NESTED else x for x in v]
    if kind is not dict:
        return v
    tag = v.get("__nixus")
    if tag is None:
        return _decode_set(v, v.get("__lines"), file, skip="__lines")
    return _DECODERS.get(tag, _decode_plain)(v, file)


def _pending_together(items: Any) -> None:
    """The elements of one list (or attributes of one set) that came out pending are asked for
    together: a type check stops at the first, and asking one per round would make the number of
    rounds grow with the length of the list (a list over all nodes)."""
    refs = [tuple(x["ref"]) for x in items if type(x) is dict and x.get("__nixus") == "pending"]
    if len(refs) > 1:
        _session().pending_together(refs)


def _decode_set(v: dict, lines: list | None, file: Loc, skip: str | None = None) -> LocatedDict:
    """An attribute set of the fleet's, with where each attribute was defined (`skip`: the
    driver's own name for the lines, when they came in the set)."""
    _pending_together(v.values())
    out = LocatedDict({k: decode(x, file) if type(x) in _NESTED else x for k, x in v.items() if k != skip})
    if lines:  # in the order of the names (both sorted by Nix); a bare line is in the module's file
        out.lines = {k: _loc(file.file, p) if type(p) is int else _loc(p[0], p[1])
                     for k, p in zip(out, lines) if p is not None}
    return out


_NESTED = (dict, list)
_locs: dict[tuple[str, int], Loc] = {}


def _loc(file: str, line: int) -> Loc:
    """One Loc per position: the same few lines of a module are the positions of many values."""
    found = _locs.get((file, line))
    if found is None:
        found = _locs[file, line] = Loc(file, line)
    return found


def _decode_plain(v: dict, file: Loc) -> Any:
    return {k: decode(x, file) for k, x in v.items()}


def _decode_module(v: dict, file: Loc) -> Any:
    """A module file or applied module function: the module itself with its file and key, as
    nixpkgs loads it (wrapping it in one more `imports` would change the merge order)."""
    f = Loc(v["file"])
    inner = decode(v["value"], f)
    extra: dict[str, Any] = {"_file": f}
    if v.get("key"):
        extra["key"] = str(Path(v["key"]).resolve())  # as the evaluator keys module files
    if isinstance(inner, LocatedDict):
        out = LocatedDict({**extra, **inner})
        out.line, out.lines = inner.line, inner.lines
        return out
    return {**extra, "imports": [inner]}


def _when_known(build: Callable[[dict], Any], fields: dict, names: Any) -> Any:
    """`build(fields)`, or a lazy one if some of the fields `names` (or their list elements) wait for
    a later round, e.g. a type built from `config`."""
    if not any(isinstance(y, Lazy) for n in names for y in _elements(fields.get(n))):
        return build(fields)
    return Lazy(lambda: build({k: _forced(x) if k in names else x for k, x in fields.items()}))


def _elements(x: Any) -> list:
    return x if isinstance(x, list) else [x]


def _forced(x: Any) -> Any:
    return [force(y) for y in x] if isinstance(x, list) else force(x)


def _decode_option(v: dict, file: Loc) -> OptionDecl | Lazy:
    fields = {k: decode(x, file) for k, x in v.items() if k != "__nixus"}
    return _when_known(_option, fields, ("type", "readOnly", "internal"))


def _option(fields: dict) -> OptionDecl:
    return OptionDecl(type=fields.get("type"), default=fields.get("default", MISSING),
                      defaultText=fields.get("defaultText", MISSING), example=fields.get("example", MISSING),
                      description=fields.get("description"), readOnly=bool(fields.get("readOnly", False)),
                      apply=fields.get("apply"), internal=bool(fields.get("internal", False)),
                      visible=fields.get("visible", True))


_SIMPLE_TYPES: dict[str, Any] = {
    "unspecified": t.unspecified, "bool": t.bool_, "int": t.int_, "float": t.float_, "number": t.number,
    "str": t.str_, "nonEmptyStr": t.non_empty_str, "singleLineStr": t.single_line_str, "lines": t.lines,
    "commas": t.commas, "envVar": t.env_var, "path": t.path, "package": t.package, "anything": t.anything,
    "attrs": t.attrs, "raw": t.raw, "nixValue": t.nix_value, "optionType": option_type,
    "ints.unsigned": ints.unsigned, "ints.positive": ints.positive, "ints.u8": ints.u8,
    "ints.u16": ints.u16, "ints.u32": ints.u32, "ints.s8": ints.s8,
    "ints.s16": ints.s16, "ints.s32": ints.s32,
}


_TYPE_BUILDERS: dict[str, Callable[[Mapping], Any]] = {
    "ints.between": lambda a: t.ints_between(a["lowest"], a["highest"]),
    "separatedString": lambda a: t.separated_string(a["sep"]),
    "strMatching": lambda a: t.str_matching(a["pattern"]),
    "enum": lambda a: t.Enum(a["values"]),
    "nullOr": lambda a: t.NullOr(a["elemType"]),
    "listOf": lambda a: t.ListOf(a["elemType"]),
    "nonEmptyListOf": lambda a: non_empty_list_of(a["elemType"]),
    "attrsOf": lambda a: t.AttrsOf(a["elemType"]),
    "lazyAttrsOf": lambda a: t.AttrsOf(a["elemType"], lazy=True),
    "uniq": lambda a: t.Unique(a["elemType"]),
    "unique": lambda a: t.Unique(a["elemType"], a.get("message", "")),
    "either": lambda a: t.Either(a["left"], a["right"]),
    "oneOf": lambda a: t.one_of(a["types"]),
    "coercedTo": lambda a: t.CoercedTo(a["from"], a["coerce"], a["to"]),
    "addCheck": lambda a: t.add_check(a["elemType"], a["check"]),
    "submodule": lambda a: Submodule(list(a["modules"]), a.get("specialArgs") or {},
                                     a.get("shorthandOnlyDefinesConfig", False), a.get("description")),
    "deferredModule": lambda a: DeferredModuleType(list(a.get("staticModules", []))),
}


def _decode_type(v: dict, file: Loc) -> Any:
    name = v["name"]
    if name in _SIMPLE_TYPES:
        return _with_empty_value(_SIMPLE_TYPES[name], v, file)
    args = decode(v.get("args", {}), file)
    return _when_known(lambda a: _with_empty_value(_TYPE_BUILDERS[name](a), v, file), args, tuple(args))


def _with_empty_value(type_: t.OptionType, v: dict, file: Loc) -> t.OptionType:
    """`type // { emptyValue = { value = ...; }; }`: the value of an option with no definitions."""
    if "emptyValue" not in v:
        return type_
    empty = decode(v["emptyValue"], file)
    out = copy.copy(type_)
    out.empty_value = empty["value"] if "value" in empty else t.NO_VALUE
    return out


def _decode_rename(v: dict, file: Loc) -> Any:
    a = {k: decode(x, file) for k, x in v.items() if k != "__nixus"}
    if a["kind"] == "renamed":
        return mkRenamedOptionModule(a["from"], a["to"])
    if a["kind"] == "alias":
        return mkAliasOptionModule(a["from"], a["to"])
    return mkRemovedOptionModule(a["option"], a["instructions"])


def _priority(v: dict, file: Loc, function: str) -> Any:
    return int_priority(decode(v["priority"], file), f"lib.{function} in {file.file}")


def _decode_ref(v: dict, file: Loc) -> Any:
    what = v.get("what", "function")
    return NixFunction(tuple(v["ref"])) if what == "function" else NixRef(tuple(v["ref"]), what)


_DECODERS: dict[str, Callable[[dict, Loc], Any]] = {
    "pending": lambda v, f: _FromNix(tuple(v["ref"]), f),
    "later": lambda v, f: _Later(tuple(v["ref"])),
    "ref": _decode_ref,
    "path": lambda v, f: NixPath(v["path"]),
    "attrs": lambda v, f: _decode_set(v["value"], v["lines"], f),
    "float": lambda v, f: float(v["value"]),
    "module": _decode_module,
    "if": lambda v, f: If(decode(v["condition"], f), decode(v["content"], f)),
    "merge": lambda v, f: Merge(decode(v["contents"], f)),
    "override": lambda v, f: Override(_priority(v, f, "mkOverride"), decode(v["content"], f)),
    "order": lambda v, f: Order(_priority(v, f, "mkOrder"), decode(v["content"], f)),
    "option": _decode_option,
    "nixus-type": _decode_type,
    "nixus-rename": _decode_rename,
}


# --- encoding what nixus knows of config, for the next round ------------------------------

_UNREPRESENTABLE = {"__nixus": "pending", "why": "unrepresentable"}


def encode_known(value: Any, path: tuple = (), pending: list | None = None, *,
                 with_module: bool = False) -> tuple[Any, list]:
    """JSON for the driver: known values, with pending markers where a value is not known yet
    (their paths are added to `pending`).

    As in nixpkgs, only the config that modules see has `_module`; the value of a submodule has not.
    """
    pending = [] if pending is None else pending
    return _encode(lambda: value, path, pending, with_module), pending


def _encode(read: Callable[[], Any], path: tuple, pending: list, with_module: bool = False) -> Any:
    """The JSON of the value that `read` gives: the one place that turns a value that is not known
    yet (or fails) into a marker."""
    try:
        value = force(read())
    except Pending:
        pending.append(path)
        return {"__nixus": "pending"}
    except EvalError:
        return _UNREPRESENTABLE
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return {"__nixus": "float", "value": value}
    if isinstance(value, NixRef):
        return {"__nixus": "ref", "ref": list(value.ref)}
    if isinstance(value, NixPath):
        return {"__nixus": "path", "path": value.path}
    if isinstance(value, list):
        return [_encode(partial(force, x), path + (str(i),), pending) for i, x in enumerate(value)]
    if isinstance(value, Mapping) and not isinstance(value, NixValue):
        try:
            names = list(value)
        except Pending:
            pending.append(path)
            return {"__nixus": "pending"}
        except EvalError:
            return _UNREPRESENTABLE
        encoded = {k: _encode(partial(value.__getitem__, k), path + (k,), pending)
                   for k in names if k != "_module" or with_module}
        # A set of the fleet's own that has a name of the driver's markers stays a set.
        return {"__nixus": "attrs", "value": encoded} if "__nixus" in encoded else encoded
    if isinstance(value, _NixosOnly):
        return {"__nixus": "nixos-only", "path": list(value.path)}
    if isinstance(value, DeferredModule):
        if any(_waits(d.value) for d in value.definitions):
            # Not passed back to Nix, but a part that waits for config (say, a NixOS setting
            # computed from another node) must still get its round.
            pending.append(path)
        readable, session = value.readable(), _current.get()
        if readable is not None and session is not None:
            session.readable[path] = readable  # sent when Nix code reads it
            return {"__nixus": "configuration", "path": list(path)}
    return _UNREPRESENTABLE


@dataclass(frozen=True)
class _NixosOnly:
    """A part of a node's configuration that only NixOS evaluates."""

    path: tuple


def _readable(ev: Evaluation, path: tuple) -> dict:
    """What Nix code may read of a configuration: the options its readable evaluation declares
    (values read when encoded), every other name as NixOS's alone."""
    def level(options: Any, config: Any, at: tuple) -> dict:
        out: dict[str, Any] = {}
        for name in config:
            if name == "_module":
                continue
            if name not in options:
                out[name] = _NixosOnly(at + (name,))
            elif isinstance(options[name], Option):
                out[name] = lazy(partial(config.__getitem__, name))
            else:
                out[name] = lazy(partial(lambda n: level(options[n], config[n], at + (n,)), name))
        return out
    return level(ev.options, ev.config, path)


def _prefix_key(prefix: tuple) -> str:
    """A prefix as the driver names it (`builtins.toJSON`)."""
    return json.dumps(list(prefix), separators=(",", ":"), ensure_ascii=False)


def _options_json(options: Any) -> dict:
    """The `options` argument as Nix modules read it: per option `isDefined`, `default`, `type` (its
    name and description), `declarations` and `loc` (the driver reads `value` from config at
    `loc`, so that no option's value is encoded twice); parts not known yet are pending."""
    out: dict[str, Any] = {}
    for name in options:
        node = options[name]
        if isinstance(node, Option):
            decl = node.decl
            info = {"_type": "option", "loc": list(node.loc), "declarations": [str(d.file) for d in decl.declarations],
                    "type": {"name": decl.type.name, "description": decl.type.description},
                    "description": decl.description, "readOnly": decl.readOnly, "internal": decl.internal,
                    "visible": _encode(lambda d=decl: d.visible, (), []),
                    "isDefined": _encode(lambda n=node: n.is_defined, (), []),
                    "files": _encode(lambda n=node: [str(f.file) for f in n.files], (), [])}
            if decl.default is not MISSING:
                info["default"] = _encode(lambda d=decl: d.default, (), [])
            out[name] = info
        else:
            out[name] = _options_json(node)
    return out


def _waits(value: Any) -> bool:
    """Whether some part of a value (a module, say) is pending on a later round."""
    try:
        value = force(value)
    except Pending:
        return True
    except EvalError:
        return False
    if isinstance(value, Property):
        return any(_waits(getattr(value, f)) for f in value.__dataclass_fields__)
    if isinstance(value, Mapping) and not isinstance(value, NixValue):
        return any(_waits(x) for x in value.values())
    if isinstance(value, list):
        return any(_waits(x) for x in value)
    return False


def _module_config(ev: Evaluation) -> Any:
    """`config` as modules see it: as in nixpkgs, undeclared definitions are an error of the result
    only, so a declaration that waits for a round does not hold back every other option."""
    freeform = ev.node(("_module", "freeformType")).evaluate()
    return ev.root.evaluate() if freeform is None else ev.config


class KnownConfig:
    """What nixus knows of `config`, as JSON for the driver. A known value never changes, so each
    update encodes only the parts that were pending before (all of it at first, compared with
    `before`, the JSON of an evaluation this one replaces)."""

    def __init__(self, ev: Evaluation, before: Any = None) -> None:
        self.ev = ev
        self.json: Any = {"__nixus": "pending"} if before is None else before
        self.pending: list[tuple] = [()]

    def update(self) -> bool:
        """Encode what became known since the last update; whether anything did."""
        before, self.pending = self.pending, []
        self._values: dict[tuple, Any] = {}
        changed = False
        for path in before:
            encoded = _encode(partial(self._at, path), path, self.pending, with_module=not path)
            if path:
                parent = self._json_at(path[:-1])
                key: Any = int(path[-1]) if isinstance(parent, list) else path[-1]
                changed = changed or parent[key] != encoded
                parent[key] = encoded
            else:
                changed = changed or self.json != encoded
                self.json = encoded
        return changed

    def _at(self, path: tuple) -> Any:
        """The value at `path` of config (parents shared by the paths of one update are read once)."""
        found = self._values.get(path)
        if found is None:
            if not path:
                found = _module_config(self.ev)
            else:
                parent = force(self._at(path[:-1]))
                found = parent[int(path[-1])] if isinstance(parent, list) else parent[path[-1]]
            self._values[path] = found
        return found

    def _json_at(self, path: tuple) -> Any:
        out = self.json
        for name in path:
            out = out[int(name)] if isinstance(out, list) else out[name]
        return out


def evaluate_with_nix(make: Callable[[], Evaluation], session: NixSession) -> Evaluation:
    """Evaluate until nothing pending can become known: one Nix round per step of dependency through
    Nix code. Values that stay pending (a `throw`, a cycle) fail when read, as they would in Nix."""
    # The session stays current afterwards: the returned evaluation resolves Nix references lazily.
    _current.set(session)
    try:
        return _rounds(make, session)
    finally:
        session.stop_next()


def _rounds(make: Callable[[], Evaluation], session: NixSession) -> Evaluation:
    """The rounds of evaluate_with_nix."""
    ev = make()
    known = KnownConfig(ev)
    warned = False
    for _ in range(MAX_ROUNDS):
        session.blocked.clear()
        with warnings.catch_warnings(record=True) as caught:  # reading every option for Nix is not a use
            warnings.simplefilter("always")
            changed = known.update()
        warned = warned or bool(caught)
        session.evaluations[()] = ev
        options_changed = session.update_options()
        if (not session.stale and not session.new_refs and not options_changed
                and (not known.pending or not changed)):
            session.known = known.json  # (for the Nix values that rendered nodes read at build time)
            session.settle(known.pending)
            # The options read here keep their values: a fresh evaluation warns when the caller reads them.
            return make() if warned else ev
        session.known = known.json
        session.run_round(list(session.blocked))
        if session.replay:
            ev = make()  # values it keeps may have come from a result that changed
            known = KnownConfig(ev, known.json)
    raise EvalError(f"the fleet did not settle after {MAX_ROUNDS} Nix rounds")

