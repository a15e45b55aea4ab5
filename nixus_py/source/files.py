"""Turning a module path into a module value, by file type."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evaluate.errors import SourceError

if TYPE_CHECKING:
    from ..evaluate.modules import Evaluation


def load_module_file(path: Path, ev: Evaluation) -> Any:
    """Load a `.py` or `.nix` module file named in `imports` (or given on the command line)."""
    if path.is_dir():
        for name in ("default.py", "default.nix"):
            if (path / name).exists():
                return load_module_file(path / name, ev)
    if not path.exists():
        raise SourceError(f"module file {path} does not exist", files=[str(path)])
    if path.suffix == ".py":
        from .pyfile import load_python_module
        return load_python_module(path)
    if path.suffix == ".nix":
        from .nixfile import load_nix_module
        return load_nix_module(path, ev)
    raise SourceError(f"{path}: a module file must end in .py or .nix", files=[str(path)])
