"""Loading fleet.py and other `.py` modules, keeping the source line of every dict key.

The file is compiled with its dict literals turned into `LocatedDict`s, so definitions and
errors can name `fleet.py:LINE` for each option a user sets.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ..evaluate.errors import SourceError
from ..evaluate.location import LocatedDict

_DICT = "__nixus_dict__"
_DICTCOMP = "__nixus_dictcomp__"


def _located(line: int, entries: tuple) -> LocatedDict:
    out = LocatedDict()
    out.line = line
    for key_line, key, value in entries:
        if key_line is None:  # a `**spread` entry
            out.update(key)
            continue
        out[key] = value
        out.lines[key] = key_line
    return out


def _located_comp(line: int, d: dict) -> LocatedDict:
    out = LocatedDict(d)
    out.line = line
    return out


class _Locate(ast.NodeTransformer):
    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        self.generic_visit(node)
        entries = [
            ast.Tuple([ast.Constant(None), v, ast.Constant(None)], ast.Load()) if k is None
            else ast.Tuple([ast.Constant(k.lineno), k, v], ast.Load())
            for k, v in zip(node.keys, node.values)
        ]
        call = ast.Call(ast.Name(_DICT, ast.Load()),
                        [ast.Constant(node.lineno), ast.Tuple(entries, ast.Load())], [])
        return ast.copy_location(call, node)

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        call = ast.Call(ast.Name(_DICTCOMP, ast.Load()), [ast.Constant(node.lineno), node], [])
        return ast.copy_location(call, node)


def exec_python(path: Path) -> dict[str, Any]:
    """Run a fleet `.py` file and return its globals."""
    try:
        source = path.read_text()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}", files=[str(path)]) from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as e:
        raise SourceError(f"{path}:{e.lineno}: syntax error: {e.msg}\n    {(e.text or '').rstrip()}",
                          files=[f"{path}:{e.lineno}"]) from None
    tree = ast.fix_missing_locations(_Locate().visit(tree))
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"nixus_fleet_{path.stem}",
                                 _DICT: _located, _DICTCOMP: _located_comp}
    code = compile(tree, str(path), "exec")
    try:
        exec(code, namespace)
    except SourceError:
        raise
    except Exception as e:  # noqa: BLE001 - any error in user code becomes a located SourceError
        line = _user_line(e, str(path))
        where = f"{path}:{line}" if line else str(path)
        raise SourceError(f"{where}: {type(e).__name__}: {e}", files=[where]) from None
    return namespace


def _user_line(e: BaseException, filename: str) -> int | None:
    tb = e.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def load_python_module(path: Path) -> Any:
    """A `.py` module file: its `module` (one module) or `modules` (a list of modules)."""
    ns = exec_python(path)
    # As nixpkgs loads a module file: the module itself, not one more level of imports (that
    # level would change where its definitions land in the merge order).
    if "module" in ns:
        return ns["module"]
    if "modules" in ns:
        return {"imports": list(ns["modules"])}
    raise SourceError(f"{path}: a nixus module file must define `module` (one module) or `modules` "
                      f"(a list of modules)", files=[str(path)])
