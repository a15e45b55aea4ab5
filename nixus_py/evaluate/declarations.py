"""The declaration side of the option tree: option declarations by name, merged per option.

Declarations depend only on the declaring modules, never on definitions. The modules that declare
a submodule's options are usually the same objects in every evaluation of that submodule type (one
per node of a fleet), so those evaluations share one `Declarations` tree through a
`DeclarationCache` and each option's declarations are merged once, not once per node.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from .errors import EvalError, show_files, show_option, type_name
from .location import Loc, line_of
from .modulevalues import FileModule
from .options import OptionDecl
from .optiontypes import OptionType, unspecified
from .properties import Definition, force


class Declarations:
    """The option declarations below one prefix: by name, and for each name either the merged
    declaration of an option or the declarations one level further down.

    Nothing here depends on where in the option tree it is used (it is shared): the methods take
    the option path only to name it in errors, and an error is never cached.
    """

    __slots__ = ("trees", "_by_name", "_children", "__weakref__")

    def __init__(self, trees: list[tuple[Loc, Any]]):
        self.trees = trees
        self._by_name: dict[str, list[tuple[Loc, Any]]] | None = None
        self._children: dict[str, OptionDecl | Declarations] = {}

    def by_name(self, prefix: tuple) -> dict[str, list[tuple[Loc, Any]]]:
        """Each declared name with what each module declares there (an option, or a set of them)."""
        if self._by_name is None:
            out: dict[str, list[tuple[Loc, Any]]] = {}
            for file, tree in self.trees:
                tree = force(tree)
                if isinstance(tree, OptionDecl) or not isinstance(tree, Mapping):
                    raise EvalError(f"An option declaration for `{show_option(prefix)}' has type "
                                    f"`{type_name(tree)}' rather than an attribute set.\n"
                                    f"Did you mean to define this outside of `options'? (in {file})",
                                    prefix, [str(file)])
                for name, value in tree.items():
                    out.setdefault(name, []).append((file.at(line_of(tree, name)), value))
            self._by_name = out
        return self._by_name

    def child(self, loc: tuple) -> OptionDecl | Declarations:
        """The merged declaration of the option at `loc` (a name below this prefix), or the
        declarations below it when it is a set of options."""
        name = loc[-1]
        found = self._children.get(name)
        if found is None:
            found = self._children[name] = self._child(loc)
        return found

    def _child(self, loc: tuple) -> OptionDecl | Declarations:
        name = loc[-1]
        decls = [(f, force(d)) for f, d in self.by_name(loc[:-1])[name]]
        for f, d in decls:
            if isinstance(d, OptionType):
                raise EvalError(
                    f"In module {f.module}: expected an option declaration at option path `{show_option(loc)}` "
                    f"but got an attribute set with type option-type\n\nWhen declaring an option, you must "
                    f"wrap the type in a `mkOption` call. It should look somewhat like:\n"
                    f"    {name} = mkOption(type=<the type you wrote for {name}>, description=...)",
                    loc, [str(f)])
        option_decls = [(f, d) for f, d in decls if isinstance(d, OptionDecl)]
        if len(option_decls) == len(decls):
            return merge_option_decls(loc, option_decls)
        if not option_decls:
            return Declarations(decls)
        if all(d.type is not None and d.type.name == "submodule" for _, d in option_decls):
            from .submodule import Submodule  # a rare case, and submodule.py imports this module
            return merge_option_decls(loc, [
                (f, d if isinstance(d, OptionDecl) else
                 OptionDecl(type=Submodule([{"_file": f, "options": d}], shorthand=None)))
                for f, d in decls])
        first_file, first = option_decls[0]
        nested = [(f, d) for f, d in decls if not isinstance(d, OptionDecl)]
        children = sorted(f" - option(s) with prefix `{show_option(loc + (n,))}' in module `{f.module}'"
                          for f, tree in nested for n in tree)
        raise EvalError(
            f"The option `{show_option(loc)}' in module `{first_file.module}' would be a parent of the "
            f"following options, but its type `{first.type.description if first.type else '<no description>'}'"
            f" does not support nested options.\n" + "\n".join(children), loc, [str(f) for f, _ in nested])


class DeclarationCache:
    """The `Declarations` of the evaluations of one submodule type, by the declaring modules."""

    __slots__ = ("_roots",)

    def __init__(self) -> None:
        # Weak: an entry lasts as long as an evaluation uses it, so types that live on (made at
        # import time) do not keep every evaluation's declarations.
        self._roots: weakref.WeakValueDictionary[tuple, Declarations] = weakref.WeakValueDictionary()

    def declarations(self, trees: list[tuple[Loc, Any]]) -> Declarations:
        """The shared declarations of these (file, options) trees, keyed by the trees' identity.

        An entry's Declarations holds its trees, so an id in a key cannot be reused by another
        object while the entry exists. Trees made anew by each evaluation (module functions)
        simply do not share.
        """
        key = tuple((file, id(tree)) for file, tree in trees)
        found = self._roots.get(key)
        if found is None:
            found = self._roots[key] = Declarations(trees)
        return found


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
                # Either side may know how to take the other in (a type of nixus's that extends
                # one of nixpkgs', such as a node's `configuration`).
                merged = res.type.type_merge(d.type) or d.type.type_merge(res.type)
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
            # In front, as nixpkgs collects them: a submodule sees the later declarations' modules first.
            sub_modules[:0] = [FileModule(file, m) if not isinstance(m, FileModule) else m for m in subs]
    assert res is not None
    res.declarations = declarations
    if res.type is None:
        res.type = unspecified
    elif res.type.sub_modules is not None:
        res.type = res.type.subst_sub_modules(sub_modules)
    return res


class OptionTypeType(OptionType):
    """nixpkgs' `types.optionType`: a type as a value; several definitions merge like declarations."""

    name = "optionType"
    description = "optionType"

    def check(self, value: Any) -> bool:
        return isinstance(value, OptionType)

    def merge(self, loc: tuple, defs: list[Definition]) -> Any:
        if len(defs) == 1:
            return defs[0].value
        # As nixpkgs does: declare an option of each type and merge the declarations (submodules join).
        return merge_option_decls(loc, [(d.file, OptionDecl(type=d.value)) for d in defs]).type


option_type = OptionTypeType()
