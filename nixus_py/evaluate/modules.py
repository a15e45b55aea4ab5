"""`eval_modules`: the module system, in the phases of nixpkgs `lib/modules.nix`.

collect modules (imports, disabledModules) → build the option tree level by level → for each
option gather its definitions with their file → discharge properties, keep the highest priority,
sort → `type.merge`. Everything is lazy: an option is merged only when read, and reading an option
that is being merged is reported as a cycle of option paths.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..nixlang import NixValue
from .errors import EvalCycle, EvalError, show_defs, show_files, show_option
from .lazyattrs import AttrAccess
from .location import Loc, LocatedDict, line_of
from .merge import Merged, merge_definitions
from .options import MISSING, OptionDecl
from .properties import OPTION_DEFAULT_PRIORITY, Definition, Lazy, Merge, Override, force, push_down
from .optiontypes import NO_VALUE, OptionType

_MODULE_KEYS = {"_class", "_file", "key", "disabledModules", "imports", "options", "config", "meta",
                "freeformType"}
_SHORTHAND_SPECIAL = {"_class", "_file", "key", "disabledModules", "require", "imports", "freeformType"}


@dataclass(slots=True)
class FileModule:
    """A module value together with the file that defined it (a submodule or deferred definition)."""

    file: Loc
    value: Any
    config_only: bool = False


class ModuleRef:
    """A module that must be produced elsewhere (a Nix function applied by the fleet.nix bridge)."""

    def apply_module(self, ev: Evaluation) -> Any:
        raise NotImplementedError

    def location(self) -> Loc:
        raise NotImplementedError


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

_stack: list[Option] = []


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
        if self._merged is None:
            self._merged = self._merge()
        return self._merged

    def _merge(self) -> Merged:
        decl, loc = self.decl, self.loc
        defs = self.raw_defs
        if decl.default is not MISSING:
            first = decl.declarations[0] if decl.declarations else Loc("<unknown>")
            defs = [Definition(first, Override(OPTION_DEFAULT_PRIORITY, decl.default)), *defs]
        if decl.readOnly and len(defs) > 1:
            separate = [Definition(d.file, merge_definitions(loc, decl.type, [d]).value) for d in defs]
            raise EvalError(f"The option `{show_option(loc)}' is read-only, but it's set multiple times. "
                            f"Definition values:{show_defs(separate)}", loc, [str(d.file) for d in defs])
        return merge_definitions(loc, decl.type, defs)

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
        if self._state == 2:
            return self._value
        if self._state == 1:
            start = next(i for i, e in enumerate(_stack) if e is self)
            cycle = [show_option(o.loc) for o in _stack[start:]] + [show_option(self.loc)]
            raise EvalCycle("infinite recursion encountered: the value of `{}' depends on itself:\n  {}"
                            .format(show_option(self.loc), "\n  -> ".join(cycle)), self.loc)
        self._state = 1
        _stack.append(self)
        try:
            value = self.merged.value
            if self.decl.apply is not None:
                value = self.decl.apply(value)
        except RecursionError:
            raise EvalError(f"evaluation too deep while evaluating `{show_option(self.loc)}' "
                            f"(a chain of {len(_stack)} options)", self.loc) from None
        except BaseException:
            self._state = 0
            raise
        finally:
            _stack.pop()
        self._value, self._state = value, 2
        return value


# --- the option tree ---------------------------------------------------------------------------

class Level:
    """One attribute set of the option tree: declarations and definitions below one prefix."""

    __slots__ = ("ev", "prefix", "decls", "configs", "_decls_by_name", "_defs_by_name", "_children")

    def __init__(self, ev: Evaluation, prefix: tuple, decls: list[tuple[Loc, Any]],
                 configs: list[tuple[Loc, Any]]):
        self.ev, self.prefix, self.decls, self.configs = ev, prefix, decls, configs
        self._decls_by_name: dict[str, list[tuple[Loc, Any]]] | None = None
        self._defs_by_name: dict[str, list[Definition]] | None = None
        self._children: dict[str, Option | Level] = {}

    @property
    def decls_by_name(self) -> dict[str, list[tuple[Loc, Any]]]:
        if self._decls_by_name is None:
            out: dict[str, list[tuple[Loc, Any]]] = {}
            for file, tree in self.decls:
                tree = force(tree)
                if isinstance(tree, OptionDecl) or not isinstance(tree, Mapping):
                    raise EvalError(f"An option declaration for `{show_option(self.prefix)}' has type "
                                    f"`{_type_name(tree)}' rather than an attribute set.\n"
                                    f"Did you mean to define this outside of `options'? (in {file})",
                                    self.prefix, [str(file)])
                for name, value in tree.items():
                    out.setdefault(name, []).append((file.at(line_of(tree, name)), value))
            self._decls_by_name = out
        return self._decls_by_name

    @property
    def defs_by_name(self) -> dict[str, list[Definition]]:
        if self._defs_by_name is None:
            out: dict[str, list[Definition]] = {}
            for file, cfg in self.configs:
                cfg = force(cfg)
                if not isinstance(cfg, Mapping) or isinstance(cfg, NixValue):
                    where = show_option(self.prefix)
                    raise EvalError(
                        f"In module `{file}', you're trying to define a value of type `{_type_name(cfg)}'\n"
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
        node = self._children.get(name)
        if node is None:
            node = self._children[name] = self._make_child(name)
        return node

    def _make_child(self, name: str) -> Option | Level:
        loc = self.prefix + (name,)
        decls = self.decls_by_name[name]
        raw = self.defs_by_name.get(name, [])
        option_decls = [(f, force(d)) for f, d in decls if isinstance(force(d), OptionDecl)]
        for f, d in decls:
            if isinstance(force(d), OptionType):
                raise EvalError(
                    f"In module {f}: expected an option declaration at option path `{show_option(loc)}` "
                    f"but got a type.\n\nWhen declaring an option, you must wrap the type in a mkOption "
                    f"call, e.g.\n    {name} = mkOption(type=<the type>, description=...)", loc, [str(f)])
        if len(option_decls) == len(decls):
            return Option(loc, merge_option_decls(loc, option_decls), raw)
        if option_decls:
            if all(d.type is not None and d.type.name == "submodule" for _, d in option_decls):
                from .submodule import Submodule
                converted = [(f, d) if isinstance(force(d), OptionDecl) else
                             (f, OptionDecl(type=Submodule([{"_file": f, "options": d}], shorthand=None)))
                             for f, d in decls]
                return Option(loc, merge_option_decls(loc, [(f, force(d)) for f, d in converted]), raw)
            first_file, first = option_decls[0]
            nested = [f for f, d in decls if not isinstance(force(d), OptionDecl)]
            raise EvalError(
                f"The option `{show_option(loc)}' in module `{first_file}' would be a parent of the "
                f"following options, but its type `{first.type.description if first.type else '<no description>'}'"
                f" does not support nested options.\n- options declared in {show_files(nested)}", loc,
                [str(f) for f in nested])
        pushed = [(d.file, c) for d in raw for c in push_down(d.value)]
        return Level(self.ev, loc, [(f, d) for f, d in decls], pushed)

    def unmatched(self) -> list[tuple[tuple, Definition]]:
        """Definitions below this level that no option declares, with their path relative to it."""
        out: list[tuple[tuple, Definition]] = []
        declared = self.decls_by_name
        for name, defs in self.defs_by_name.items():
            if name not in declared:
                out.extend(((name,), d) for d in defs)
                continue
            node = self.child(name)
            if isinstance(node, Level):
                out.extend(((name,) + p, d) for p, d in node.unmatched())
        return out

    def value(self) -> LevelConfig:
        return LevelConfig(self)


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if v is None:
        return "null"
    if isinstance(v, Mapping):
        return "set"
    if callable(v):
        return "lambda"
    return type(v).__name__


class LevelConfig(AttrAccess, Mapping):
    """The config values below one level of the option tree."""

    __slots__ = ("_level",)

    def __init__(self, level: Level):
        self._level = level

    def __getitem__(self, name: str) -> Any:
        level = self._level
        if name not in level.decls_by_name:
            raise KeyError(name)
        node = level.child(name)
        return node.value if isinstance(node, Option) else node.value()

    def __iter__(self) -> Iterator[str]:
        return iter(self._level.decls_by_name)

    def __len__(self) -> int:
        return len(self._level.decls_by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._level.decls_by_name


def merge_option_decls(loc: tuple, decls: list[tuple[Loc, OptionDecl]]) -> OptionDecl:
    """Merge several declarations of one option (sub-options of submodules may be spread out)."""
    res: OptionDecl | None = None
    declarations: list[Loc] = []
    sub_modules: list = []
    for file, d in decls:
        where = d.pos if d.pos is not None and d.pos.file == file.file else file
        if res is None:
            res = d.copy()
        else:
            if any(d.has(k) and res.has(k) for k in ("default", "example", "description", "apply")):
                raise EvalError(f"The option `{show_option(loc)}' in `{where}' is already declared in "
                                f"{show_files(declarations)}.", loc, [str(where)] + [str(x) for x in declarations])
            if d.type is not None and res.type is not None:
                merged = res.type.type_merge(d.type)
                if merged is None:
                    raise EvalError(f"The option `{show_option(loc)}' in `{where}' is already declared in "
                                    f"{show_files(declarations)}.", loc,
                                    [str(where)] + [str(x) for x in declarations])
                res.type = merged
            for k in ("default", "example", "description", "apply", "defaultText"):
                if d.has(k) and not res.has(k):
                    setattr(res, k, getattr(d, k))
            if res.type is None:
                res.type = d.type
            res.readOnly = res.readOnly or d.readOnly
            res.internal = res.internal or d.internal
        declarations.append(where)
        subs = d.type.sub_modules if d.type is not None else None
        if subs is not None:
            sub_modules.extend(FileModule(file, m) if not isinstance(m, FileModule) else m for m in subs)
    assert res is not None
    res.declarations = declarations
    if res.type is None:
        from .optiontypes import unspecified
        res.type = unspecified
    elif res.type.sub_modules is not None:
        res.type = res.type.subst_sub_modules(sub_modules)
    return res


# --- module collection -------------------------------------------------------------------------

_signature_cache: dict[Any, tuple[frozenset, bool]] = {}


def _params(fn: Callable) -> tuple[frozenset, bool]:
    """The named parameters of a module function and whether it takes `**kwargs`."""
    code = getattr(fn, "__code__", None) or fn
    cached = _signature_cache.get(code)
    if cached is None:
        sig = inspect.signature(fn)
        names = frozenset(p.name for p in sig.parameters.values()
                          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        cached = _signature_cache[code] = (names, var_kw)
    return cached


def _function_loc(fn: Callable) -> Loc:
    code = getattr(fn, "__code__", None)
    if code is None:
        return Loc(repr(fn))
    return Loc(code.co_filename, code.co_firstlineno)


class Evaluation:
    """One `evalModules` call: a list of modules, evaluated lazily into `config` and `options`."""

    def __init__(self, modules: list, *, prefix: tuple = (), special_args: Mapping[str, Any] | None = None,
                 file: Loc | None = None):
        self.initial = list(modules)
        self.prefix = tuple(prefix)
        self.special_args = dict(special_args or {})
        self.file = file or Loc("<unknown>")
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
        from .internal import internal_module
        result: list[Module] = []
        seen: set[str] = set()

        def visit(value: Any, file: Loc, key: str) -> None:
            m = self._normalize(value, file, key)
            if m is None or m.key in seen:
                return
            seen.add(m.key)
            result.append(m)
            for i, imp in enumerate(force(m.imports) or [], 1):
                if isinstance(imp, list):
                    raise EvalError(f"Module imports can't be nested lists. Perhaps you meant to remove "
                                    f"one level of lists? (in {m.file})", self.prefix, [str(m.file)])
                visit(imp, m.file, f"{m.key}:anon-{i}")

        visit(internal_module(), Loc("<nixus internal module>"), "nixus:internal")
        for i, value in enumerate(self.initial, 1):
            visit(value, self.file, f"{self.file.file}:anon-{i}")
        disabled = {k for m in result for k in m.disabled}
        return [m for m in result if m.key not in disabled]

    def _normalize(self, value: Any, file: Loc, key: str) -> Module | None:
        value = force(value)
        config_only = False
        if isinstance(value, FileModule):
            file, config_only, value = value.file, value.config_only, force(value.value)
        if isinstance(value, (str, Path)) and not isinstance(value, NixValue):
            from ..source.files import load_module_file
            path = Path(value)
            loaded = load_module_file(path, self)
            return self._normalize(loaded, Loc(str(path)), str(path.resolve()))
        if isinstance(value, ModuleRef):
            return self._normalize(value.apply_module(self), value.location(), key)
        if _is_deferred(value):
            return self._normalize({"imports": value.modules()}, file, key)
        if callable(value) and not isinstance(value, Mapping):
            loc = _function_loc(value)
            out = value(**self._args_for(value))
            if isinstance(out, Mapping):
                file = loc.at(line_of(out)) if out is not None else loc
            return self._normalize(out, file if isinstance(out, Mapping) else loc, key)
        if not isinstance(value, Mapping):
            raise EvalError(f"module {file} ({key}) does not look like a module: it is a "
                            f"{_type_name(value)}.", self.prefix, [str(file)])
        if isinstance(value, LocatedDict):
            file = file.at(value.line)
        if "_file" in value:
            f = value["_file"]
            file = f if isinstance(f, Loc) else Loc(str(f))
        mkey = str(value["key"]) if "key" in value else key
        disabled = [self._disabled_key(d, file) for d in value.get("disabledModules", [])]
        freeform = value.get("freeformType")
        if config_only:
            config: Any = value
            return Module(mkey, file, [], [], {}, config)
        if "config" in value or "options" in value:
            bad = [k for k in value if k not in _MODULE_KEYS]
            if bad:
                raise EvalError(
                    f"Module `{file}' has an unsupported attribute `{bad[0]}'. This is caused by introducing "
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
                                "presumably a module, that does not have a `key` attribute.", self.prefix,
                                [str(file)])
            return str(d["key"])
        if isinstance(d, (str, Path)):
            p = Path(d)
            if not p.is_absolute():
                p = Path(file.file).parent / p
            return str(p.resolve())
        if callable(d):
            return str(id(d))
        return str(d)

    def _args_for(self, fn: Callable) -> dict[str, Any]:
        names, var_kw = _params(fn)
        available = self.module_args()
        if var_kw:
            return available
        args = {n: available[n] for n in names if n in available}
        for n in names - available.keys():
            args[n] = ConfigRef(self, ("_module", "args", n))
        return args

    def module_args(self) -> dict[str, Any]:
        from .lib import lib
        return {"config": self.config, "options": self.options, "lib": lib, **self.special_args}

    # phase 2: option tree --------------------------------------------------------------------
    @property
    def root(self) -> Level:
        if self._root is None:
            mods = self.modules
            decls = [(m.file, m.options) for m in mods if m.options]
            configs = [(m.file, c) for m in mods for c in push_down(m.config)]
            self._root = Level(self, self.prefix, decls, configs)
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
            declared = root.value()
            freeform_type = self.node(("_module", "freeformType")).value  # type: ignore[union-attr]
            unmatched = root.unmatched()
            if freeform_type is not None and unmatched:
                from .freeform import with_freeform
                self._config_value = with_freeform(self.prefix, freeform_type, unmatched, declared)
            else:
                if unmatched and self.node(("_module", "check")).value:  # type: ignore[union-attr]
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
        same = [x for p, x in unmatched if p == path]
        msg = f"The option `{show_option(loc)}' does not exist. Definition values:{show_defs(same)}{suggestion}"
        if set(self.root.names()) == {"_module"}:
            where = show_option(self.prefix)
            if not where:
                msg += ("\n\nIt seems as if you're trying to declare an option by placing it into `config' "
                        "rather than `options'!")
            else:
                msg += (f"\n\nHowever there are no options defined in `{where}'. Are you sure you've "
                        "declared your options properly? This can happen if you e.g. declared your options "
                        "in `types.submodule' under `config' rather than `options'.")
        raise EvalError(msg, loc, [str(x.file) for x in same])


def _suggest(name: str, candidates: list[str], parent: tuple) -> str:
    close = sorted((c for c in candidates if c != "_module" and _levenshtein(name, c) <= 2),
                   key=lambda c: _levenshtein(name, c))[:3]
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
    if not any(k in d for k in keys):
        return d
    out = LocatedDict({k: v for k, v in d.items() if k not in keys})
    if isinstance(d, LocatedDict):
        out.line, out.lines = d.line, d.lines
    return out


def _is_deferred(value: Any) -> bool:
    from .submodule import DeferredModule
    return isinstance(value, DeferredModule)


# --- what modules see as `config` and `options` -----------------------------------------------

class ConfigRef(Lazy):
    """`config.a.b` read while modules are still being collected: a value resolved later."""

    __slots__ = ("_ev", "_path")

    def __init__(self, ev: Evaluation, path: tuple):
        super().__init__(self._resolve)
        self._ev, self._path = ev, path

    def _resolve(self) -> Any:
        value: Any = self._ev.config
        for name in self._path:
            value = force(value)
            try:
                value = value[name]
            except (KeyError, TypeError):
                raise EvalError(f"attribute `{show_option(self._path)}' of config does not exist "
                                f"(read by a module{self._ev._where()})", self._ev.prefix + self._path) from None
        return value

    def __getattr__(self, name: str) -> ConfigRef:
        if name.startswith("__"):
            raise AttributeError(name)
        return ConfigRef(self._ev, self._path + (name,))

    def __getitem__(self, name: str) -> ConfigRef:
        return ConfigRef(self._ev, self._path + (name,))

    def _misuse(self, *_: Any) -> Any:
        raise EvalCycle(
            f"infinite recursion: a module{self._ev._where()} used the value of `config."
            f"{show_option(self._path)}' while the modules were being collected. Module bodies run "
            f"before any option has a value; defer the computation with `lazy(lambda: ...)` "
            f"(or pass `config.{show_option(self._path)}` itself, which is resolved later).",
            self._ev.prefix + self._path)

    __bool__ = __iter__ = __len__ = __str__ = __format__ = __eq__ = __lt__ = __add__ = _misuse  # type: ignore
    __contains__ = __int__ = __float__ = _misuse  # type: ignore
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<config.{show_option(self._path)}>"


class ConfigProxy(AttrAccess, Mapping):
    """The `config` argument of modules (or a part of it, like `nodes`): references while the
    modules are being collected, values afterwards."""

    __slots__ = ("_ev", "_path")

    def __init__(self, ev: Evaluation, path: tuple = ()):
        self._ev, self._path = ev, path

    def _target(self) -> Mapping:
        value: Any = self._ev.value()
        for name in self._path:
            value = force(value[name])
        return value

    def __getitem__(self, name: str) -> Any:
        ev = self._ev
        if ev.collecting:
            return ConfigRef(ev, self._path + (name,))
        return self._target()[name]

    def __iter__(self) -> Iterator[str]:
        if self._ev.collecting:
            ConfigRef(self._ev, self._path)._misuse()
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
