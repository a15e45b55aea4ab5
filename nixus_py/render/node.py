"""One node's `configuration` definitions as a single NixOS module file.

Definitions that are data are written out as Nix. A definition that only Nix holds (a function
or value from a fleet.nix) is written as a reference into the fleet's Nix evaluation: nixus
writes the input of that evaluation's last round beside the nodes (`_fleet/`), and the reference
gets the value back from nixus's driver when NixOS evaluates the node.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..evaluate.errors import EvalError
from ..evaluate.location import Loc
from ..evaluate.modules import ModuleRef, _params
from ..evaluate.properties import If, Merge, Order, Override, force
from ..evaluate.submodule import DeferredModule
from ..fleet.formats import node_file
from ..fleet.nixos_facts import FACTS_NIX
from ..settings import BUNDLED, nixpkgs_lib
from ..nixlang import Annotated, NixExpr, NixPath, NixValue, NixWriter, comment, quote_string
from ..source.nixfile import build_input, refs_written_as
from ..source.nixstart import DRIVER

INDENT = 2
# What a Python NixOS module (a function in `configuration`) receives: names of the Nix module args.
_MODULE_ARGS = ("config", "lib", "pkgs", "options", "modulesPath", "utils")
# Values that hold no `nix.path` to resolve: most of a configuration (an annotated value, written
# by a module, is kept as it is).
_WITHOUT_PATHS = frozenset({str, int, bool, float, type(None), Annotated})
# Beside the nodes' modules (a directory: no node's `<name>.nix` can be it): the fleet's Nix values.
VALUES_DIR = "_fleet"
_VALUES = "nixusFleet"  # the rendered module's name for them
_FACTS = NixPath(str(FACTS_NIX)).nix()  # imported by every node (nixus's own: no input of the fleet's)


def origin(loc: Loc, base: Path) -> str:
    """`file:line` relative to the fleet's directory (bundled modules as `nixus:modules/...`),
    so output does not depend on the cwd or where nixus is installed."""
    path = loc.file
    if path.startswith(str(BUNDLED) + "/"):
        path = "nixus:modules/" + path[len(str(BUNDLED)) + 1:]
    elif path.startswith("/"):
        try:
            path = os.path.relpath(path, base)
        except ValueError:
            pass
    return f"{path}:{loc.line}" if loc.line else path


def render_node(name: str, configuration: DeferredModule, fleet_file: Path, out_dir: Path) -> str:
    """The NixOS module for node `name` (to render many nodes, one `Renderer` serves them all)."""
    return Renderer(fleet_file, out_dir).node(name, configuration)


@dataclasses.dataclass(frozen=True)
class RenderedNode:
    """A node's rendered files: its module and, if it has any, its special arguments."""

    module: Path
    text: str  # all that was rendered, as one text
    special_args: Path | None


def _write_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


ARGS_SUFFIX = ".args.nix"


def special_args_file(name: str) -> str:
    """The file in `_fleet/` with node `name`'s special arguments (no node's name can make
    another node's file, nor `values.nix`)."""
    return f"{name}{ARGS_SUFFIX}"


class Renderer:
    """Renders the nodes of one fleet into one directory: what they share is worked out once
    (the fleet's directory, and the Nix text of the values modules hand to many nodes)."""

    def __init__(self, fleet_file: Path, out_dir: Path):
        self.fleet_file = fleet_file
        self.base = fleet_file.resolve().parent
        self.out_dir = out_dir.resolve()
        self._dir = self.out_dir  # where the file being rendered goes
        self.writer = NixWriter(INDENT)
        self._origins: dict[Loc, str] = {}  # every node's definitions come from the same few lines
        self._values_written = False
        self._reads: set[str] = set()  # what the node being rendered reads: "files", "values"
        self.mutable_inputs: dict[str, set[str]] = {}  # by node: what it reads beyond its module's text

    def write(self, name: str, configuration: DeferredModule) -> RenderedNode:
        """Render node `name` into the directory (a file is rewritten only when it changed)."""
        module = node_file(self.out_dir, name, ".nix")
        text = self.node(name, configuration)
        _write_changed(module, text)
        args_text = self.special_args(name, configuration)
        args = None
        if args_text is not None:
            args = node_file(self.out_dir / VALUES_DIR, name, ARGS_SUFFIX)
            args.parent.mkdir(exist_ok=True)
            _write_changed(args, args_text)
        return RenderedNode(module, text + (args_text or ""), args)

    def node(self, name: str, configuration: DeferredModule) -> str:
        """The NixOS module for node `name`: its configuration definitions, each with its origin."""
        entries = [f"    # nixus: the options of Nixus's public-ip and secrets modules\n    {_FACTS}\n"]
        self._reads = set()
        with refs_written_as(self._ref):
            for d in configuration.definitions:
                value = force(d.value)
                if isinstance(value, Mapping) and not value:
                    continue  # a module with nothing to say for this node
                body = self._module(value, level=2)
                where = self._origins.get(d.file)
                if where is None:
                    where = self._origins[d.file] = comment(origin(d.file, self.base))
                entries.append(f"    # {where}\n    {body}\n")
        self.mutable_inputs[name] = self._reads
        args = ""
        if configuration.special_args:
            args = ("# NixOS evaluates it with the special arguments (`specialArgs`) "
                    f"{', '.join(sorted(configuration.special_args))}: see {VALUES_DIR}/"
                    f"{special_args_file(name)}\n")
        return self._file(name, "{ config, lib, pkgs, ... }:\n", "./" + VALUES_DIR + "/values.nix",
                          "{\n  imports = [\n" + "".join(entries) + "  ];\n}\n", args)

    def special_args(self, name: str, configuration: DeferredModule) -> str | None:
        """The text of `_fleet/<special_args_file(name)>`: the `specialArgs` that a fleet gives the
        node's NixOS evaluation (by declaring `configuration` again as a `submoduleWith`, as Nixus
        fleets do), or None when it gives none."""
        if not configuration.special_args:
            return None
        reads = self.mutable_inputs.get(name, set())
        self._reads, self._dir = set(), self.out_dir / VALUES_DIR
        try:
            with refs_written_as(self._ref):
                body = self.writer.text(self._resolve_paths(configuration.special_args), 0)
        finally:
            self._dir = self.out_dir
        self.mutable_inputs[name] = reads | self._reads
        return self._file(name, "", "./values.nix", body + "\n",
                          "# The special arguments (`specialArgs`) of its NixOS evaluation.\n")

    def _file(self, name: str, head: str, values_file: str, body: str, note: str = "") -> str:
        """A rendered file of node `name`: the header, then (if the body reads any) the fleet's
        Nix values from `values_file`, then the body."""
        values = (f"let\n  # The Nix values of the fleet's .nix files that this node uses, as nixus evaluated them.\n"
                  f"  {_VALUES} = import {values_file};\nin\n") if "values" in self._reads else ""
        text = (f"# Generated by nixus from {comment(self.fleet_file.name)} for node {quote_string(name)}. "
                "Do not edit.\n" + note + head + values + body)
        try:
            text.encode()
        except UnicodeEncodeError as e:  # a lone surrogate, say (from "\ud800" in fleet.py)
            raise EvalError(f"node {name}: its configuration holds {text[e.start:e.end]!r}, which is no "
                            "Unicode character, so no file can hold it") from None
        return text

    def _module(self, value: Any, level: int) -> str:
        """One definition of `configuration`: a set, a path, a Nix value or a Python function."""
        if isinstance(value, NixPath):
            return self._path(value)
        if isinstance(value, NixValue):
            return value.nix()
        if isinstance(value, ModuleRef):
            raise EvalError("a node configuration must be a module (attribute set, function or path)")
        if callable(value) and not isinstance(value, Mapping):
            return self._function(value, level)
        if isinstance(value, Mapping):
            return self.writer.text(self._resolve_paths(value), level)
        raise EvalError(f"a node configuration must be a module (attribute set, function or path), "
                        f"not {type(value).__name__}")

    def _function(self, fn: Callable, level: int) -> str:
        """A Python module function, applied to placeholders that render as the Nix module arguments."""
        names, var_kw = _params(fn)
        wanted = [n for n in _MODULE_ARGS if n in names or var_kw]
        result = fn(**{n: NixExpr(n) for n in wanted})
        body = self._module(force(result), level)
        return f"({{ {', '.join(wanted + ['...'])} }}: {body})"

    def _resolve_paths(self, value: Any) -> Any:
        """Fleet-relative `nix.path`s become paths relative to the rendered file; a set or list
        without any is kept as it is, not copied (most of every node's configuration)."""
        value = force(value)
        if type(value) in _WITHOUT_PATHS:
            return value
        if isinstance(value, NixPath):
            return NixExpr(self._path(value))
        if isinstance(value, (If, Override, Order)):  # `mkForce (./x.nix)`: the path is in the content
            content = self._resolve_paths(value.content)
            return value if content is value.content else dataclasses.replace(value, content=content)
        if isinstance(value, Merge):
            contents = [self._resolve_paths(c) for c in value.contents]
            return value if all(a is b for a, b in zip(contents, value.contents)) else Merge(contents)
        if isinstance(value, Mapping):
            resolved = {k: self._resolve_paths(value[k]) for k in value}
            return value if all(resolved[k] is value[k] for k in value) else resolved
        if isinstance(value, list):
            items = [self._resolve_paths(v) for v in value]
            return value if all(a is b for a, b in zip(items, value)) else items
        return value

    def _ref(self, ref: tuple) -> str:
        """A Nix value of the fleet's .nix files: got back at build time (see the module doc)."""
        if not self._values_written:
            self._write_values()
        self._reads.add("values")
        path = " ".join(quote_string(n) if isinstance(n, str) else str(int(n)) for n in ref)
        return f"({_VALUES} [ {path} ])"

    def _write_values(self) -> None:
        """`_fleet/values.json` (the driver's input) and `_fleet/values.nix` (the driver on it)."""
        directory = self.out_dir / VALUES_DIR
        directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps(build_input(), sort_keys=True)
        target = directory / "values.json"
        if not target.exists() or target.read_text() != data:
            target.write_text(data)
        (directory / "values.nix").write_text(
            f"# Generated by nixus from {comment(self.fleet_file.name)}: its Nix evaluation with the config of\n"
            "# its last round, for the rendered nodes to get their Nix values from. Do not edit.\n"
            f"import {NixPath(str(DRIVER)).nix()} {{\n"
            f"  libPath = {quote_string(str(nixpkgs_lib()))};\n"
            "  inputFile = ./values.json;\n"
            "  forBuild = true;\n"
            "}\n")
        self._values_written = True

    def _path(self, p: NixPath) -> str:
        """A fleet-relative path as Nix finds it from the rendered file."""
        if not p.path.startswith("/nix/store/"):
            self._reads.add("files")
        target = Path(p.path) if p.path.startswith("/") else (self.base / p.path)
        rel = os.path.relpath(os.path.normpath(target), self._dir)
        return NixPath(rel if rel.startswith("../") else "./" + rel).nix()
