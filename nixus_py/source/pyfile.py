"""Loading fleet.py and other `.py` modules, keeping the source line of every dict key.

The file is compiled with its dict literals turned into `LocatedDict`s, so definitions and
errors can name `fleet.py:LINE` for each option a user sets. Compiling a large fleet this way
takes a while, so the code is cached on disk (like a `.pyc`), keyed by the file's content.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import marshal
import os
import stat
import tempfile
import time
from pathlib import Path
from types import CodeType
from typing import Any

from ..evaluate.errors import NixusError, SourceError
from ..settings import BUNDLED, make_private
from ..evaluate.location import LocatedDict, located

_DICT = "__nixus_dict__"
_DICT_ENTRIES = "__nixus_dict_entries__"
_DICTCOMP = "__nixus_dictcomp__"


def _located_dict(line: int, key_lines: tuple, d: dict) -> LocatedDict:
    """A dict literal whose keys are constants: `key_lines` pairs each key with its line.

    A key written twice keeps the line of its last entry; keys from `**spread` have none.
    """
    return located(d, line, dict(key_lines))


def _located_entries(line: int, entries: tuple) -> LocatedDict:
    """A dict literal with computed keys, built from its (line, key, value) entries in order."""
    out = located({}, line, {})
    for key_line, key, value in entries:
        if key_line is None:  # a `**spread` entry
            out.update(key)
            continue
        out[key] = value
        out.lines[key] = key_line
    return out


def _located_comp(line: int, d: dict) -> LocatedDict:
    """A dict comprehension: only its own line is known."""
    return located(d, line, {})


# --- the rewrite ---------------------------------------------------------------------------------

def _at(node: ast.expr, where: ast.expr) -> ast.expr:
    """A new node placed at `where` (compile needs a location on every node)."""
    node.lineno, node.col_offset = where.lineno, where.col_offset
    node.end_lineno, node.end_col_offset = where.end_lineno, where.end_col_offset
    return node


def _call(name: str, where: ast.expr, *args: ast.expr) -> ast.expr:
    """`name(line, *args)` in place of the expression `where`."""
    func = _at(ast.Name(name, ast.Load()), where)
    return _at(ast.Call(func, [_at(ast.Constant(where.lineno), where), *args], []), where)


def _wrap_dict(node: ast.Dict) -> ast.expr:
    """The dict literal stays as it is when its keys are constants (the usual case): their lines
    are known here and passed as one constant. Computed keys are only known at run time, so then
    each entry is passed with its line."""
    if all(k is None or isinstance(k, ast.Constant) for k in node.keys):
        key_lines = tuple((k.value, k.lineno) for k in node.keys if isinstance(k, ast.Constant))
        return _call(_DICT, node, _at(ast.Constant(key_lines), node), node)
    entries = [_at(ast.Tuple(_entry(k, v), ast.Load()), v) for k, v in zip(node.keys, node.values)]
    return _call(_DICT_ENTRIES, node, _at(ast.Tuple(entries, ast.Load()), node))


def _entry(key: ast.expr | None, value: ast.expr) -> list[ast.expr]:
    """(line, key, value) of one dict literal entry; (None, mapping, None) for `**mapping`."""
    if key is None:
        return [_at(ast.Constant(None), value), value, _at(ast.Constant(None), value)]
    return [_at(ast.Constant(key.lineno), key), key, value]


def _locate(node: ast.AST) -> ast.AST:
    """`node` with every dict literal and dict comprehension in it wrapped to make a LocatedDict.

    Children first, so that a wrapped entry holds its rewritten key and value. (A walk over
    `_fields` rather than ast.NodeTransformer, which takes several times longer on a large fleet.)
    """
    for name in node._fields:
        value = getattr(node, name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    value[i] = _locate(item)
        elif isinstance(value, ast.AST):
            new = _locate(value)
            if new is not value:
                setattr(node, name, new)
    if isinstance(node, ast.Dict):
        return _wrap_dict(node)
    if isinstance(node, ast.DictComp):
        return _call(_DICTCOMP, node, node)
    return node


# --- compiling, with a cache -------------------------------------------------------------------

def _parse(path: Path, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as e:
        raise SourceError(f"{path}:{e.lineno}: syntax error: {e.msg}\n    {(e.text or '').rstrip()}",
                          files=[f"{path}:{e.lineno}"]) from None


def _cache_dir() -> Path | None:
    """NIXUS_CACHE_DIR, else `nixus` in the user's cache directory (XDG); None without a home."""
    if os.environ.get("NIXUS_CACHE_DIR"):
        return Path(os.environ["NIXUS_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "nixus"
    try:
        return Path.home() / ".cache" / "nixus"
    except RuntimeError:
        return None


_REWRITE_ID = hashlib.sha256(Path(__file__).read_bytes()).digest()  # a changed rewrite invalidates the cache
_CACHE_MAX_AGE = 30 * 24 * 3600  # entries of files not compiled for this long are removed


def _compile(path: Path, source: str) -> CodeType:
    """The rewritten code of `path`: from the cache when its source is unchanged, else compiled.

    There is one cache entry per file path. It starts with a hash of everything the code depends
    on (source, path, this rewrite, Python's bytecode version), so any change recompiles.
    """
    key = hashlib.sha256(b"\0".join([importlib.util.MAGIC_NUMBER, _REWRITE_ID, str(path).encode(),
                                     source.encode()])).digest()
    cache = _cache_dir()
    entry = cache / "py" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.code" if cache else None
    code = _cached(entry, key) if entry and cache and _trusted(entry, cache) else None
    if code is None:
        code = compile(_locate(_parse(path, source)), str(path), "exec")
        if entry:
            _store(entry, key + marshal.dumps(code))
    return code


def _cached(entry: Path, key: bytes) -> CodeType | None:
    """The code in `entry` if it was stored under `key` (and is intact)."""
    try:
        data = entry.read_bytes()
        code = marshal.loads(data[len(key):]) if data.startswith(key) else None
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _trusted(entry: Path, cache: Path) -> bool:
    """Whether only this user can have written `entry`: the key of an entry is public (the source
    and its path), so an entry that someone else could write is code they would run as us."""
    uid = os.getuid()
    try:
        found = [os.lstat(p) for p in (entry, entry.parent, cache)]
    except OSError:
        return False
    return all(st.st_uid == uid and not st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode) for st in found)


def _store(entry: Path, data: bytes) -> None:
    """Write a cache entry atomically (a concurrent reader sees the old or the new one), and drop
    stale entries. The cache only saves time, so failing to write it is not an error."""
    try:
        make_private(entry.parent)  # ~/.cache/nixus too: an entry is only as safe as its directories
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, entry)
        cutoff = time.time() - _CACHE_MAX_AGE
        for old in entry.parent.glob("*.code"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def exec_python(path: Path) -> dict[str, Any]:
    """Run a fleet `.py` file and return its globals."""
    try:
        source = path.read_text()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}", files=[str(path)]) from None
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text (byte {e.start}): a fleet file is Python source",
                          files=[str(path)]) from None
    code = _compile(path, source)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"nixus_fleet_{path.stem}",
                                 _DICT: _located_dict, _DICT_ENTRIES: _located_entries, _DICTCOMP: _located_comp}
    if not path.resolve().is_relative_to(BUNDLED):  # an error in a bundled module is nixus's own
        _FLEET_FILES.add(str(path))
    try:
        exec(code, namespace)
    except SourceError:
        raise
    except (Exception, SystemExit, GeneratorExit) as e:  # noqa: BLE001 - an error in user code is a fleet error
        raise user_error(e) or SourceError(f"{path}: {describe(e)}", files=[str(path)]) from None
    return namespace


# The fleet's .py files run so far: a frame of one of them is the user's code, whenever it runs
# (a module body now, a module function, a lazy value or a configuration function later).
_FLEET_FILES: set[str] = set()


def user_error(e: BaseException) -> SourceError | None:
    """`e` as an error at the deepest line of the fleet's own code it passed through, if any."""
    tb, where = e.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in _FLEET_FILES:
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return SourceError(f"{where}: {describe(e)}", files=[where]) if where else None


def describe(e: BaseException) -> str:
    """What went wrong in the user's code, in a line (an exit is named as such: it is no answer)."""
    if isinstance(e, SystemExit):
        return f"the fleet called sys.exit({e.code!r}): a fleet file must not exit"
    return str(e) if isinstance(e, NixusError) else f"{type(e).__name__}: {e}"


def load_python_module(path: Path) -> Any:
    """A `.py` module file: its `module` (one module) or `modules` (a list of modules)."""
    ns = exec_python(path)
    # As nixpkgs loads a module file: the module itself, not one more level of imports (that
    # level would change where its definitions land in the merge order).
    if "module" in ns:
        return ns["module"]
    if "modules" in ns:
        modules = ns["modules"]
        if not isinstance(modules, (list, tuple)):
            kind = "a dict" if isinstance(modules, dict) else type(modules).__name__
            raise SourceError(f"{path}: `modules' must be a list of modules, not {kind}", files=[str(path)])
        return {"imports": list(modules)}
    raise SourceError(f"{path}: a nixus module file must define `module` (one module) or `modules` "
                      f"(a list of modules)", files=[str(path)])
