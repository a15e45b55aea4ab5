"""`eval_modules`: the module system, in the phases of nixpkgs `lib/modules.nix`.

collect modules (imports, disabledModules) → build the option tree level by level → for each
option gather its definitions with their file → discharge properties, keep the highest priority,
sort → `type.merge`. Everything is lazy: an option is merged only when read, and reading an option
that is being merged is reported as a cycle of option paths.
"""

from __future__ import annotations

import inspect
import operator
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType
from typing import Any

from ..nixlang import NixPath, NixValue
from .declarations import DeclarationCache, Declarations
from .errors import EvalCycle, EvalError, show_defs, show_option, type_name
from .internal import INTERNAL_FILE, internal_module
from .lazyattrs import AttrAccess
from .lib import lib
from .location import Loc, LocatedDict, line_of, located
from .merge import NO_VALUE, Merged, merge_definitions
from .modulevalues import DeferredModule, FileModule, ModuleRef
from .options import MISSING, OptionDecl
from .properties import Definition, If, Lazy, Merge, Override, Property, force, push_down
from .optiontypes import OptionType

_MODULE_KEYS = {"_class", "_file", "key", "disabledModules", "imports", "options", "config", "meta",
                "freeformType"}
_SHORTHAND_SPECIAL = {"_class", "_file", "key", "disabledModules", "require", "imports", "freeformType"}
_PLAIN_DICTS = {dict, LocatedDict}
_UNKNOWN = Loc("<unknown>")


@dataclass(slots=True)
class Module:
    """A normalized module: what every kind of module value is turned into."""

    key: str
    file: Loc
    disabled: list
    imports: list
    options: Any
    config: Any


# --- option evaluation with cycle detection ---------------------------------------------------

# Reading an option runs about eight Python frames before the next option it reads is evaluated, so
# a chain of a few thousand options (nixpkgs handles those) needs more than Python's default 1000.
RECURSION_LIMIT = 40_000

_stack: list[Option] = []


def allow_deep_evaluation() -> None:
    """Raise Python's recursion limit so that long chains of options can be evaluated."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


class Option:
    """An option of an evaluation: its merged declaration, definitions and (lazy) value."""

    __slots__ = ("loc", "decl", "raw_defs", "_merged", "_value", "_state")

    def __init__(self, loc: tuple, decl: OptionDecl, raw_defs: list[Definition]):
        self.loc, self.decl, self.raw_defs = loc, decl, raw_defs
        self._merged: Merged | None = None
        self._state = 0  # 0 new, 1 computing, 2 done

    @property
    def type(self) -> OptionType:
        return self.decl.type

    @property
    def declarations(self) -> list[Loc]:
        return self.decl.declarations

    @property
    def merged(self) -> Merged:
        return self._merged or self._merge()

    def _merge(self) -> Merged:
        decl, loc = self.decl, self.loc
        defs = self.raw_defs
        # A single plain definition (priority 100) always beats the default (1500), which is then
        # filtered out unseen; only a read-only option counts the default as a second definition.
        one_plain = len(defs) == 1 and not isinstance(defs[0].value, (Lazy, Property)) and not decl.readOnly
        default = None if one_plain else decl.default_definition()
        if default is not None:
            defs = [default, *defs]
        if decl.readOnly and len(defs) > 1:
            separate = [Definition(d.file, merge_definitions(loc, decl.type, [d]).value()) for d in defs]
            raise EvalError(f"The option `{show_option(loc)}' is read-only, but it's set multiple times. "
                            f"Definition values:{show_defs(separate)}", loc, [str(d.file) for d in defs])
        self._merged = merge_definitions(loc, decl.type, defs)
        return self._merged

    @property
    def is_defined(self) -> bool:
        return self.merged.is_defined

    @property
    def highest_prio(self) -> int:
        return self.merged.highest_prio

    @property
    def definitions(self) -> list[Definition]:
        return self.merged.defs

    @property
    def files(self) -> list[Loc]:
        return [d.file for d in self.merged.defs]

    @property
    def value(self) -> Any:
        return self.evaluate()

    def evaluate(self) -> Any:
        """The option's value; reading it again while it is computed is a cycle of option paths."""
        if self._state == 2:
            return self._value
        if self._state == 1:
            raise self._cycle()
        self._state = 1
        _stack.append(self)
        try:
            value = (self._merged or self._merge()).value()
            if self.decl.apply is not None:
                value = self.decl.apply(value)
        except BaseException as e:
            self._state = 0
            if isinstance(e, RecursionError):
                raise EvalError(f"evaluation too deep while evaluating `{show_option(self.loc)}' "
                                f"(a chain of {len(_stack)} options)", self.loc) from None
            raise
        finally:
            _stack.pop()
        self._value, self._state = value, 2
        return value

    def _cycle(self) -> EvalCycle:
        start = next(i for i, e in enumerate(_stack) if e is self)
        cycle = [show_option(o.loc) for o in _stack[start:]] + [show_option(self.loc)]
        return EvalCycle("infinite recursion encountered: the value of `{}' depends on itself:\n  {}"
                         .format(show_option(self.loc), "\n  -> ".join(cycle)), self.loc)


# --- the option tree ---------------------------------------------------------------------------

class Level:
    """One attribute set of the option tree: declarations and definitions below one prefix."""

    __slots__ = ("ev", "prefix", "declared", "configs", "_defs_by_name", "_children")

    def __init__(self, ev: Evaluation, prefix: tuple, declared: Declarations, configs: list[tuple[Loc, Any]]):
        self.ev, self.prefix, self.declared, self.configs = ev, prefix, declared, configs
        self._defs_by_name: dict[str, list[Definition]] | None = None
        self._children: dict[str, Option | Level] = {}

    @property
    def decls_by_name(self) -> dict[str, list[tuple[Loc, Any]]]:
        return self.declared.by_name(self.prefix)

    @property
    def defs_by_name(self) -> dict[str, list[Definition]]:
        if self._defs_by_name is None:
            out: dict[str, list[Definition]] = {}
            for file, cfg in self.configs:
                cfg = force(cfg)
                if type(cfg) not in _PLAIN_DICTS and (not isinstance(cfg, Mapping) or isinstance(cfg, NixValue)):
                    where = show_option(self.prefix)
                    raise EvalError(
                        f"In module `{file.module}', you're trying to define a value of type `{type_name(cfg)}'\n"
                        f"rather than an attribute set for the option\n`{where}'!\n\n"
                        f"This usually happens if `{where}' has option definitions inside that are not "
                        f"matched.", self.prefix, [str(file)])
                for name, value in cfg.items():
                    out.setdefault(name, []).append(Definition(file.at(line_of(cfg, name)), value))
            self._defs_by_name = out
        return self._defs_by_name

    def names(self) -> list[str]:
        return list(self.decls_by_name)

    def child(self, name: str) -> Option | Level:
        """The option or set of options `name` (a KeyError when no module declares it)."""
        node = self._children.get(name)
        if node is None:
            if name not in self.decls_by_name:
                raise KeyError(name)
            node = self._children[name] = self._make_child(name)
        return node

    def _make_child(self, name: str) -> Option | Level:
        loc = self.prefix + (name,)
        raw = self.defs_by_name.get(name, [])
        declared = self.declared.child(loc)
        if isinstance(declared, OptionDecl):
            return Option(loc, declared, raw)
        return Level(self.ev, loc, declared, [(d.file, c) for d in raw for c in push_down(d.value)])

    def unmatched(self) -> list[tuple[tuple, Definition]]:
        """Definitions below this level that no option declares, with their path relative to it."""
        out: list[tuple[tuple, Definition]] = []
        declared = self.decls_by_name
        for name, defs in self.defs_by_name.items():
            if name not in declared:
                out.extend(((name,), d) for d in defs)
            elif not isinstance(self.declared.child(self.prefix + (name,)), OptionDecl):
                out.extend(((name,) + p, d) for p, d in self.child(name).unmatched())  # type: ignore[union-attr]
        return out

    def evaluate(self) -> LevelConfig:
        return LevelConfig(self)


class LevelConfig(AttrAccess, Mapping):
    """The config values below one level of the option tree."""

    __slots__ = ("_level",)

    def __init__(self, level: Level):
        self._level = level

    def __getitem__(self, name: str) -> Any:
        return self._level.child(name).evaluate()

    def __iter__(self) -> Iterator[str]:
        return iter(self._level.decls_by_name)

    def __len__(self) -> int:
        return len(self._level.decls_by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._level.decls_by_name


# --- module collection -------------------------------------------------------------------------

# By the id of a function's code object, as hashing a code object hashes all of its body; an entry
# keeps its code object alive, so the id cannot be reused by another one while it is cached.
_signature_cache: dict[int, tuple[Any, tuple[frozenset, bool]]] = {}


def _params(fn: Callable) -> tuple[frozenset, bool]:
    """The named parameters of a module function and whether it takes `**kwargs`."""
    code = getattr(fn, "__code__", None) or fn
    cached = _signature_cache.get(id(code))
    if cached is None or cached[0] is not code:
        sig = inspect.signature(fn)
        names = frozenset(p.name for p in sig.parameters.values()
                          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        cached = _signature_cache[id(code)] = (code, (names, var_kw))
    return cached[1]


def _function_loc(fn: Callable) -> Loc:
    code = getattr(fn, "__code__", None)
    if code is None:
        return Loc(repr(fn))
    return Loc(code.co_filename, code.co_firstlineno)


class Evaluation:
    """One `evalModules` call: a list of modules, evaluated lazily into `config` and `options`."""

    # A partial evaluation (what nixus reads of a node's NixOS configuration before NixOS does)
    # leaves out the modules it cannot apply and the imports it cannot resolve (they need what
    # only NixOS has), rather than failing or waiting for them.
    partial = False

    def __init__(self, modules: list, *, prefix: tuple = (), special_args: Mapping[str, Any] | None = None,
                 file: Loc | None = None, declarations: DeclarationCache | None = None):
        allow_deep_evaluation()
        self.declarations = declarations or DeclarationCache()
        self.initial = list(modules)
        self.prefix = tuple(prefix)
        self.special_args = dict(special_args or {})
        self.file = file or _UNKNOWN
        self.collecting = False
        self._modules: list[Module] | None = None
        self._root: Level | None = None
        self._config_value: Any = None
        self.config = ConfigProxy(self)
        self.options = OptionsView(self, ())

    # phase 1: collect ----------------------------------------------------------------------
    @property
    def modules(self) -> list[Module]:
        if self._modules is None:
            if self.collecting:
                raise EvalCycle("infinite recursion encountered: `config' was read while the module "
                                f"list{self._where()} was still being built (imports or option "
                                "declarations that depend on config)", self.prefix)
            self.collecting = True
            try:
                self._modules = self._collect()
            finally:
                self.collecting = False
        return self._modules

    def _where(self) -> str:
        return f" of `{show_option(self.prefix)}'" if self.prefix else ""

    def _collect(self) -> list[Module]:
        """nixpkgs' collectModules: load all imports, drop disabled keys, keep each key once.

        Modules are kept breadth-first (as `builtins.genericClosure` does) and then reversed, so the
        definitions of later modules come first, as in nixpkgs (visible in the order of lists).
        """
        loaded: dict[str, tuple[Module, list[str]]] = {}

        def load(value: Any, file: Loc, key: str) -> str:
            m = self._normalize(value, file, key)
            if m.key not in loaded:
                imports: list[str] = []
                loaded[m.key] = (m, imports)
                for i, imp in enumerate(force(m.imports) or [], 1):
                    if isinstance(imp, list):
                        raise EvalError(f"Module imports can't be nested lists. Perhaps you meant to remove "
                                        f"one level of lists? (in {m.file})", self.prefix, [str(m.file)])
                    imports.append(load(imp, m.file, f"{m.key}:anon-{i}"))
            return m.key

        roots = [load(internal_module(), INTERNAL_FILE, "nixus:internal")]
        roots += [load(value, self.file, f":anon-{i}") for i, value in enumerate(self.initial, 1)]
        disabled = {k for m, _ in loaded.values() for k in m.disabled}
        kept: dict[str, Module] = {}
        queue = deque(roots)
        while queue:
            key = queue.popleft()
            if key not in kept and key not in disabled:
                module, imports = loaded[key]
                kept[key] = module
                queue.extend(imports)
        return list(reversed(kept.values()))

    def _normalize(self, value: Any, file: Loc, key: str) -> Module:
        value = force(value)
        config_only = False
        if isinstance(value, FileModule):
            file, config_only, value = value.file, value.config_only, force(value.value)
        if type(value) in _PLAIN_DICTS:  # most modules: skip the checks for other kinds of module
            return self._attrs_module(value, file, key, config_only)
        if isinstance(value, (str, Path, NixPath)):
            from ..source.files import load_module_file
            path = module_path(value, file)
            try:
                loaded = load_module_file(path, self)
            except EvalError:  # a .nix file of a fleet.py: no Nix to read it, NixOS reads it
                if not self.partial:
                    raise
                loaded = {}
            return self._normalize(loaded, Loc(str(path)), str(path.resolve()))
        if isinstance(value, ModuleRef):
            return self._normalize(value.apply_module(self), value.location(), key)
        if isinstance(value, (If, Override, Merge)):  # `lib.mkIf c { ... }` as a whole module is its config
            return self._normalize({"config": value}, file, key)
        if isinstance(value, DeferredModule):
            return self._normalize({"imports": value.modules()}, file, key)
        if isinstance(value, FunctionType) or (callable(value) and not isinstance(value, Mapping)):
            try:
                out = value(**self._args_for(value))
            except Exception:  # noqa: BLE001 - NixOS applies it, and reports its errors
                if not self.partial:
                    raise
                out = {}
            return self._normalize(out, _function_loc(value).at(line_of(out)), key)
        if not isinstance(value, Mapping):
            raise EvalError(f"module {file} ({key}) does not look like a module: it is a "
                            f"{type_name(value)}.", self.prefix, [str(file)])
        return self._attrs_module(value, file, key, config_only)

    def _attrs_module(self, value: Mapping, file: Loc, key: str, config_only: bool) -> Module:
        """A module written as an attribute set: `{options, config, imports, ...}` or config alone."""
        if isinstance(value, LocatedDict):
            file = file.at(value.line)
        if "_file" in value:
            f = value["_file"]
            file = f if isinstance(f, Loc) else Loc(str(f))
        mkey = str(value["key"]) if "key" in value else key
        disabled = [self._disabled_key(d, file) for d in value["disabledModules"]] if "disabledModules" in value else []
        freeform = value.get("freeformType")
        if config_only:
            config: Any = value
            return Module(mkey, file, [], [], {}, config)
        if "config" in value or "options" in value:
            if not _MODULE_KEYS.issuperset(value):
                bad = [k for k in value if k not in _MODULE_KEYS]
                raise EvalError(
                    f"Module `{file.module}' has an unsupported attribute `{bad[0]}'. This is caused by introducing "
                    f"a top-level `config' or `options' attribute. Add configuration attributes immediately "
                    f"on the top level instead, or move all of them (namely: {' '.join(bad)}) into the "
                    f"explicit `config' attribute.", self.prefix, [str(file)])
            imports, options, config = value.get("imports", []), value.get("options", {}), value.get("config", {})
        else:
            imports = list(value.get("require", [])) + list(value.get("imports", []))
            options = {}
            config = _without(value, _SHORTHAND_SPECIAL)
        if freeform is not None:
            config = Merge([config, {"_module": {"freeformType": freeform}}])
        return Module(mkey, file, disabled, imports, options, config)

    def _disabled_key(self, d: Any, file: Loc) -> str:
        d = force(d)
        if isinstance(d, Mapping):
            if "key" not in d:
                raise EvalError(f"Module `{file}` contains a disabledModules item that is an attribute set, "
                                "presumably a module, that does not have a `key` attribute. This means that the "
                                "module system doesn't have any means to identify the module that should be "
                                "disabled. Make sure that you've put the correct value in disabledModules: a "
                                "path, or an attribute set with a `key` attribute.", self.prefix, [str(file)])
            return str(d["key"])
        if isinstance(d, (str, Path, NixPath)):
            return str(module_path(d, file).resolve())
        if isinstance(d, (int, float)) and not isinstance(d, bool):  # Nix's toString of a number
            return str(d)
        raise EvalError(f"Each disabledModules item must be a path, string, or an attribute set with a key "
                        f"attribute. However, one of the disabledModules items in `{file}' is a "
                        f"{type_name(d)}.", self.prefix, [str(file)])

    def _args_for(self, fn: Callable) -> dict[str, Any]:
        """The arguments a module function asks for; names not known yet come from `_module.args`."""
        names, var_kw = _params(fn)
        available = self.module_args()
        args = available if var_kw else {n: available[n] for n in names if n in available}
        missing = names - available.keys()
        return {**args, **{n: ConfigRef(self, ("_module", "args", n)) for n in missing}} if missing else args

    def module_args(self) -> dict[str, Any]:
        return {"config": self.config, "options": self.options, "lib": lib, **self.special_args}

    # phase 2: option tree --------------------------------------------------------------------
    @property
    def root(self) -> Level:
        if self._root is None:
            mods = self.modules
            trees = [(m.file, m.options) for m in mods if m.options]
            configs = [(m.file, c) for m in mods for c in push_down(m.config)]
            self._root = Level(self, self.prefix, self.declarations.declarations(trees), configs)
        return self._root

    def node(self, path: tuple) -> Option | Level:
        """The option or option-set at `path` (relative to this evaluation's prefix)."""
        node: Option | Level = self.root
        for i, name in enumerate(path):
            if not isinstance(node, Level) or name not in node.decls_by_name:
                raise KeyError(path[: i + 1])
            node = node.child(name)
        return node

    # phase 3: values -------------------------------------------------------------------------
    def value(self) -> Mapping:
        """The config: declared option values, plus freeform definitions; checks unmatched ones."""
        if self._config_value is None:
            root = self.root
            declared = root.evaluate()
            freeform_type = self.node(("_module", "freeformType")).evaluate()
            unmatched = root.unmatched()
            if freeform_type is not None and unmatched:
                from .freeform import with_freeform
                self._config_value = with_freeform(self.prefix, freeform_type, unmatched, declared)
            else:
                if unmatched and self.node(("_module", "check")).evaluate():
                    self._raise_unmatched(unmatched)
                self._config_value = declared
        return self._config_value

    def _raise_unmatched(self, unmatched: list[tuple[tuple, Definition]]) -> None:
        path, d = unmatched[0]
        loc = self.prefix + path
        parent = self.root
        try:
            parent_node = self.node(path[:-1])
            parent = parent_node if isinstance(parent_node, Level) else parent
        except KeyError:
            pass
        suggestion = _suggest(path[-1], parent.names(), self.prefix + path[:-1])
        msg = f"The option `{show_option(loc)}' does not exist. Definition values:{show_defs([d])}{suggestion}"
        if set(self.root.names()) == {"_module"}:
            where = show_option(self.prefix)
            if not where:
                msg += ("\n\nIt seems as if you're trying to declare an option by placing it into `config' "
                        "rather than `options'!")
            else:
                msg += (f"\n\nHowever there are no options defined in `{where}'. Are you sure you've "
                        "declared your options properly? This can happen if you e.g. declared your options "
                        "in `types.submodule' under `config' rather than `options'.")
        raise EvalError(msg, loc, [str(d.file)])


def module_path(path: str | Path | NixPath, file: Loc) -> Path:
    """A module path written in `file`: relative to that file's directory, like a Nix path literal."""
    p = Path(path.path if isinstance(path, NixPath) else path)
    if p.is_absolute() or file.file.startswith("<"):
        return p
    return Path(file.file).parent / p


def _suggest(name: str, candidates: list[str], parent: tuple) -> str:
    """nixpkgs' "Did you mean": the three closest siblings (of many, only those within distance 2)."""
    names = sorted(c for c in candidates if c != "_module")
    if len(names) >= 100:
        names = [c for c in names if _levenshtein(name, c) <= 2]
    close = sorted(names, key=lambda c: _levenshtein(name, c))[:3]
    if not close:
        return ""
    shown = [f"`{show_option(parent + (c,))}'" for c in close]
    if len(shown) == 1:
        return f"\n\nDid you mean {shown[0]}?"
    return f"\n\nDid you mean {', '.join(shown[:-1])} or {shown[-1]}?"


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _without(d: Mapping, keys: set[str]) -> Mapping:
    if keys.isdisjoint(d):
        return d
    kept = {k: v for k, v in d.items() if k not in keys}
    return located(kept, d.line, d.lines) if isinstance(d, LocatedDict) else LocatedDict(kept)


# --- what modules see as `config` and `options` -----------------------------------------------

def _on_value(op: Callable[..., Any], reflected: bool = False) -> Callable[..., Any]:
    """A ConfigRef operator: `op` applied to the referenced value."""
    if reflected:
        return lambda self, other: op(other, self.force())
    return lambda self, *args: op(self.force(), *args)


class ConfigRef(Lazy):
    """`config.a.b` read while modules are still being collected: a value resolved later.

    Module bodies run before any option has a value, so `cfg = config.services.foo` gives a
    reference. Passed as a definition or a `mkIf` condition it is resolved when needed; used later
    (inside `lazy`) it behaves like the value; used while collecting, it is an error.
    """

    __slots__ = ("_ev", "_path")

    def __init__(self, ev: Evaluation, path: tuple):
        super().__init__(self._resolve)
        self._ev, self._path = ev, path

    def _resolve(self) -> Any:
        ev = self._ev
        if ev.collecting:
            what = f"config.{show_option(self._path)}" if self._path else "config"
            raise EvalCycle(
                f"infinite recursion: a module{ev._where()} used the value of `{what}' while the modules were "
                f"being collected. Module bodies run before any option has a value; defer the computation "
                f"with `lazy(lambda: ...)` (or pass `{what}` itself, which is resolved later).",
                ev.prefix + self._path)
        value: Any = ev.config
        for name in self._path:
            value = force(value)
            try:
                value = value[name]
            except (KeyError, TypeError):
                raise EvalError(f"attribute `{show_option(self._path)}' of config does not exist "
                                f"(read by a module{ev._where()})", ev.prefix + self._path) from None
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._ev.collecting:
            return ConfigRef(self._ev, self._path + (name,))
        return getattr(self.force(), name)

    def __getitem__(self, name: Any) -> Any:
        if self._ev.collecting:
            return ConfigRef(self._ev, self._path + (name,))
        return self.force()[name]

    __bool__, __len__, __iter__, __contains__ = (_on_value(bool), _on_value(len), _on_value(iter),
                                                 _on_value(operator.contains))
    __str__, __format__, __int__, __float__, __index__ = (_on_value(str), _on_value(format), _on_value(int),
                                                          _on_value(float), _on_value(operator.index))
    __eq__, __ne__, __lt__, __le__, __gt__, __ge__ = (_on_value(operator.eq), _on_value(operator.ne),
                                                      _on_value(operator.lt), _on_value(operator.le),
                                                      _on_value(operator.gt), _on_value(operator.ge))
    __add__, __radd__ = _on_value(operator.add), _on_value(operator.add, reflected=True)
    __sub__, __rsub__ = _on_value(operator.sub), _on_value(operator.sub, reflected=True)
    __mul__, __rmul__ = _on_value(operator.mul), _on_value(operator.mul, reflected=True)
    __truediv__, __floordiv__, __mod__ = (_on_value(operator.truediv), _on_value(operator.floordiv),
                                          _on_value(operator.mod))
    __neg__ = _on_value(operator.neg)
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<config.{show_option(self._path)}>"


class ConfigProxy(AttrAccess, Mapping):
    """The `config` argument of modules (or a part of it, like `nodes`): references while the
    modules are being collected, values afterwards."""

    __slots__ = ("_ev", "_path", "_resolved")

    def __init__(self, ev: Evaluation, path: tuple = ()):
        self._ev, self._path = ev, path
        self._resolved: Mapping | None = None

    def _target(self) -> Mapping:
        # Once the evaluation has a value, the value at the path never changes: keep it (every
        # option of a submodule, e.g. of each node, is read through here).
        if self._resolved is None:
            value: Any = self._ev.value()
            for name in self._path:
                value = force(value[name])
            self._resolved = value
        return self._resolved

    def __getitem__(self, name: str) -> Any:
        if self._resolved is not None:
            return self._resolved[name]
        ev = self._ev
        if ev.collecting:
            return ConfigRef(ev, self._path + (name,))
        return self._target()[name]

    def __iter__(self) -> Iterator[str]:
        if self._ev.collecting:
            ConfigRef(self._ev, self._path).force()
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __contains__(self, name: object) -> bool:
        return name in self._target()

    @property
    def evaluation(self) -> Evaluation:
        return self._ev

    def __repr__(self) -> str:
        where = show_option(self._ev.prefix + self._path)
        return f"<config of {where or 'the top level'}>"


class OptionsView(AttrAccess, Mapping):
    """The `options` argument: the option tree, with `Option` objects at the leaves."""

    __slots__ = ("_ev", "_path")

    def __init__(self, ev: Evaluation, path: tuple):
        self._ev, self._path = ev, path

    def __getitem__(self, name: str) -> Any:
        ev = self._ev
        if ev.collecting:
            return Lazy(lambda: OptionsView(ev, self._path)[name])
        node = ev.node(self._path + (name,)) if name in self else None
        if node is None:
            raise KeyError(name)
        return node if isinstance(node, Option) else OptionsView(ev, self._path + (name,))

    def _level(self) -> Level:
        node = self._ev.node(self._path)
        assert isinstance(node, Level)
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._level().decls_by_name)

    def __len__(self) -> int:
        return len(self._level().decls_by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._level().decls_by_name


def eval_modules(modules: list, *, prefix: tuple = (), special_args: Mapping[str, Any] | None = None,
                 file: Loc | None = None) -> Evaluation:
    """Evaluate a list of modules (lazily): `.config` for values, `.options` for the option tree."""
    return Evaluation(modules, prefix=prefix, special_args=special_args, file=file)


__all__ = ["Evaluation", "FileModule", "Module", "ModuleRef", "Option", "eval_modules", "MISSING", "NO_VALUE"]
