"""The fleet.nix bridge: Nix modules evaluated by nixus's module system in a few Nix runs.

Each round runs `nix-instantiate` once (nix/driver.nix) over every `.nix` module, with a `lib`
whose module functions build plain data (nix/lib.nix) and with what is known of `config` so far.
Values that need an unknown part of `config` come back pending; nixus evaluates all it can,
then runs another round with more of `config` known, until nothing is pending. Nix functions
(submodule functions, `apply`, NixOS modules in `configuration`) stay in Nix as references.
"""

from __future__ import annotations

import contextvars
import json
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..evaluate.lib import ints
from ..evaluate import optiontypes as t
from ..evaluate.errors import EvalError, SourceError, show_option
from ..evaluate.location import Loc, LocatedDict
from ..evaluate.modules import Evaluation, ModuleRef
from ..evaluate.options import MISSING, OptionDecl
from ..evaluate.properties import If, Lazy, Merge, Order, Override, force
from ..evaluate.renames import mkAliasOptionModule, mkRemovedOptionModule, mkRenamedOptionModule
from ..evaluate.submodule import DeferredModuleType, Submodule
from ..nixlang import NixPath, NixValue

DRIVER = Path(__file__).parent / "nix" / "driver.nix"
MAX_ROUNDS = 50


class Pending(Exception):
    """A value needs a part of `config` or a Nix application that the next round provides."""


class _PendingValue(Lazy):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(_raise_pending)


def _raise_pending() -> Any:
    raise Pending()


@dataclass(frozen=True, slots=True)
class NixRef(NixValue):
    """A Nix value reached by a path in the driver's output (a function, a derivation)."""

    ref: tuple
    what: str = "function"

    def nix(self) -> str:
        return f"(nixus.ref {json.dumps(list(self.ref))})"


class NixFunction(NixRef, ModuleRef):
    """A Nix function: applied by the next Nix round when nixus needs its result."""

    def apply_module(self, ev: Evaluation) -> Any:
        return _session().apply(("module", self.ref, ev.prefix, ev.special_args.get("name")))

    def location(self) -> Loc:
        return Loc("<nix function>")

    def __call__(self, arg: Any) -> Any:
        return _session().apply(("call", self.ref, json.dumps(encode_known(arg)[0], sort_keys=True)))


_current: contextvars.ContextVar[NixSession | None] = contextvars.ContextVar("nixus_nix_session", default=None)


def _session() -> NixSession:
    s = _current.get()
    if s is None:
        raise EvalError("a .nix module was used outside of a fleet evaluation")
    return s


def load_nix_module(path: Path, ev: Evaluation) -> Any:
    """The module that a `.nix` file evaluates to (pending until a Nix round has read the file)."""
    return _session().file_module(path.resolve())


class NixSession:
    """All Nix rounds of one fleet evaluation: files, requests, known config and results."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.requests: list[tuple] = []
        self.request_index: dict[tuple, int] = {}
        self.file_results: dict[str, Any] = {}
        self.app_results: dict[int, Any] = {}
        self.known: Any = {"__nixus": "pending"}
        self.dirty = False  # a new file or request appeared during this round
        self.rounds = 0

    def file_module(self, path: Path) -> Any:
        key = str(path)
        if key in self.file_results:
            return self.file_results[key]
        if key not in self.files:
            self.files.append(key)
            self.dirty = True
        raise Pending()

    def apply(self, request: tuple) -> Any:
        index = self.request_index.get(request)
        if index is None:
            index = self.request_index[request] = len(self.requests)
            self.requests.append(request)
            self.dirty = True
        if index in self.app_results:
            return self.app_results[index]
        raise Pending()

    def run_round(self) -> None:
        """One nix-instantiate over all files and requests, with the known config."""
        self.rounds += 1
        data = {"files": self.files, "known": self.known, "requests": [_request_json(r) for r in self.requests]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=True) as f:
            json.dump(data, f)
            f.flush()
            expr = f"import {DRIVER} {{ libPath = {settings.nixpkgs_lib()}; inputFile = {f.name}; }}"
            proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
                                  capture_output=True, text=True)
        if proc.returncode != 0:
            raise SourceError(_nix_error(proc.stderr, self.files), files=self.files)
        out = json.loads(proc.stdout)
        self.file_results = {f: decode(v, Loc(f)) for f, v in zip(self.files, out["files"])}
        self.app_results = {i: decode(v, Loc("<nix function>")) for i, v in enumerate(out["apps"])}
        self.dirty = False


def _request_json(r: tuple) -> dict:
    if r[0] == "module":
        return {"kind": "module", "ref": list(r[1]), "prefix": list(r[2]), "name": r[3]}
    return {"kind": "call", "ref": list(r[1]), "arg": json.loads(r[2])}


def _nix_error(stderr: str, files: list[str]) -> str:
    keep = [line for line in stderr.splitlines() if str(DRIVER.parent) not in line and line.strip()]
    text = "\n".join(keep[-12:]) or stderr.strip()
    return f"Nix could not evaluate {' and '.join(files) or 'the fleet'}:\n{text}"


# --- decoding the driver's output ---------------------------------------------------------

def decode(v: Any, file: Loc) -> Any:
    """Driver output → module-system values (properties, declarations, types, references)."""
    if isinstance(v, list):
        return [decode(x, file) for x in v]
    if not isinstance(v, dict):
        return v
    tag = v.get("__nixus")
    if tag is None:
        out = LocatedDict()
        pos = v.get("__pos") or {}
        for k, x in v.items():
            if k == "__pos":
                continue
            out[k] = decode(x, file)
            p = pos.get(k)
            if p:
                out.lines[k] = Loc(p[0], p[1])
        return out
    return _DECODERS.get(tag, _decode_plain)(v, file)


def _decode_plain(v: dict, file: Loc) -> Any:
    return {k: decode(x, file) for k, x in v.items() if k not in ("__pos",)}


def _decode_module(v: dict, file: Loc) -> Any:
    f = Loc(v["file"])
    inner = decode(v["value"], f)
    out: dict[str, Any] = {"_file": f, "imports": [inner]}
    if v.get("key"):
        out["key"] = v["key"]
    return out


def _decode_option(v: dict, file: Loc) -> OptionDecl:
    fields = {k: decode(x, file) for k, x in v.items() if k not in ("__nixus", "__pos")}
    decl = OptionDecl(type=fields.get("type"), default=fields.get("default", MISSING),
                      defaultText=fields.get("defaultText", MISSING), example=fields.get("example", MISSING),
                      description=fields.get("description"), readOnly=bool(fields.get("readOnly", False)),
                      apply=fields.get("apply"), internal=bool(fields.get("internal", False)),
                      visible=fields.get("visible", True))
    return decl


_SIMPLE_TYPES: dict[str, Any] = {
    "unspecified": t.unspecified, "bool": t.bool_, "int": t.int_, "float": t.float_, "number": t.number,
    "str": t.str_, "nonEmptyStr": t.non_empty_str, "singleLineStr": t.single_line_str, "lines": t.lines,
    "commas": t.commas, "envVar": t.env_var, "path": t.path, "package": t.package, "anything": t.anything,
    "attrs": t.attrs, "raw": t.raw, "nixValue": t.nix_value,
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
        return _SIMPLE_TYPES[name]
    args = {k: force(x) for k, x in decode(v.get("args", {}), file).items()}
    return _TYPE_BUILDERS[name](args)


def _decode_rename(v: dict, file: Loc) -> Any:
    a = {k: decode(x, file) for k, x in v.items() if k != "__nixus"}
    if a["kind"] == "renamed":
        return mkRenamedOptionModule(a["from"], a["to"])
    if a["kind"] == "alias":
        return mkAliasOptionModule(a["from"], a["to"])
    return mkRemovedOptionModule(a["option"], a["instructions"])


def _decode_ref(v: dict, file: Loc) -> Any:
    if v.get("derivation"):
        return NixRef(tuple(v["ref"]), "derivation")
    return NixFunction(tuple(v["ref"]))


_DECODERS: dict[str, Callable[[dict, Loc], Any]] = {
    "pending": lambda v, f: _PendingValue(),
    "ref": _decode_ref,
    "path": lambda v, f: NixPath(v["path"]),
    "float": lambda v, f: float(v["value"]),
    "module": _decode_module,
    "if": lambda v, f: If(decode(v["condition"], f), decode(v["content"], f)),
    "merge": lambda v, f: Merge(decode(v["contents"], f)),
    "override": lambda v, f: Override(decode(v["priority"], f), decode(v["content"], f)),
    "order": lambda v, f: Order(decode(v["priority"], f), decode(v["content"], f)),
    "option": _decode_option,
    "nixus-type": _decode_type,
    "nixus-rename": _decode_rename,
}


# --- encoding what nixus knows of config, for the next round ------------------------------

_UNREPRESENTABLE = {"__nixus": "pending", "why": "unrepresentable"}


def encode_known(value: Any, path: tuple = (), pending: list | None = None) -> tuple[Any, list]:
    """JSON for the driver: known values, with pending markers where a value is not known yet."""
    pending = [] if pending is None else pending
    try:
        value = force(value)
    except Pending:
        pending.append(path)
        return {"__nixus": "pending"}, pending
    except EvalError:
        return _UNREPRESENTABLE, pending
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value, pending
    if isinstance(value, float):
        return {"__nixus": "float", "value": value}, pending
    if isinstance(value, NixRef):
        return {"__nixus": "ref", "ref": list(value.ref)}, pending
    if isinstance(value, NixPath):
        return {"__nixus": "path", "path": value.path}, pending
    if isinstance(value, list):
        return [encode_known(x, path + (str(i),), pending)[0] for i, x in enumerate(value)], pending
    if isinstance(value, Mapping) and not isinstance(value, NixValue):
        out = {}
        try:
            names = list(value)
        except Pending:
            pending.append(path)
            return {"__nixus": "pending"}, pending
        except EvalError:
            return _UNREPRESENTABLE, pending
        for k in names:
            out[k] = encode_known(_Get(value, k), path + (k,), pending)[0]
        return out, pending
    return _UNREPRESENTABLE, pending


class _Get(Lazy):
    """`mapping[key]` evaluated inside encode_known's error handling."""

    __slots__ = ()

    def __init__(self, mapping: Mapping, key: str):
        super().__init__(lambda: mapping[key])


def evaluate_with_nix(make: Callable[[], Evaluation], session: NixSession) -> Evaluation:
    """Evaluate until no value is pending: one Nix round per step of dependency through Nix code."""
    # The session stays current afterwards: the returned evaluation resolves Nix references lazily.
    _current.set(session)
    previous: Any = None
    for _ in range(MAX_ROUNDS):
        ev = make()
        known, pending = encode_known(ev.config)
        if not pending and not session.dirty:
            return ev
        if known == previous and not session.dirty:
            shown = ", ".join(f"`{show_option(p)}'" for p in pending[:8])
            raise EvalError(f"infinite recursion encountered: these options depend on each other through "
                            f"Nix code and never get a value: {shown}", pending[0] if pending else None)
        previous = session.known = known
        session.run_round()
    raise EvalError(f"the fleet did not settle after {MAX_ROUNDS} Nix rounds")

