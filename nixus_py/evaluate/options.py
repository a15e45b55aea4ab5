"""Option declarations (`mkOption`) and evaluated options (value, definitions, priority)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .location import Loc
from .properties import OPTION_DEFAULT_PRIORITY, Definition, Override

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


@dataclass(slots=True)
class OptionDecl:
    """What `mkOption` returns: a declaration, merged with other declarations of the same path."""

    type: Any = None
    default: Any = MISSING
    defaultText: Any = MISSING
    example: Any = MISSING
    description: str | None = None
    readOnly: bool = False
    apply: Callable[[Any], Any] | None = None
    internal: bool = False
    visible: Any = True
    pos: Loc | None = None
    declarations: list[Loc] = field(default_factory=list)
    sub_modules: list = field(default_factory=list)
    _default_definition: Definition | None = field(default=None, repr=False, compare=False)

    def has(self, key: str) -> bool:
        value = getattr(self, key)
        return value is not MISSING and value is not None

    def default_definition(self) -> Definition | None:
        """The default as a definition of priority mkOptionDefault, or None. Made once: the
        options of every node of a fleet share one merged declaration."""
        if self.default is MISSING:
            return None
        if self._default_definition is None:
            first = self.declarations[0] if self.declarations else Loc("<unknown>")
            self._default_definition = Definition(first, Override(OPTION_DEFAULT_PRIORITY, self.default))
        return self._default_definition

    def copy(self) -> OptionDecl:
        """A shallow copy to merge other declarations into (dataclasses.replace is much slower)."""
        return OptionDecl(self.type, self.default, self.defaultText, self.example, self.description,
                          self.readOnly, self.apply, self.internal, self.visible, self.pos,
                          self.declarations, self.sub_modules)


def _caller_loc(depth: int = 2) -> Loc | None:
    frame = sys._getframe(depth)
    return Loc(frame.f_code.co_filename, frame.f_lineno)


def mkOption(*, type: Any = None, default: Any = MISSING, defaultText: Any = MISSING,
             example: Any = MISSING, description: str | None = None, readOnly: bool = False,
             apply: Callable[[Any], Any] | None = None, internal: bool = False, visible: Any = True,
             _pos: Loc | None = None) -> OptionDecl:
    """Declare an option, as nixpkgs' `lib.mkOption`."""
    return OptionDecl(type=type, default=default, defaultText=defaultText, example=example,
                      description=description, readOnly=readOnly, apply=apply, internal=internal,
                      visible=visible, pos=_pos or _caller_loc())


def mkEnableOption(name: str) -> OptionDecl:
    """A boolean option, default false, described as "Whether to enable NAME."."""
    from .optiontypes import bool_  # (late: optiontypes declares options through this module)
    return OptionDecl(type=bool_, default=False, example=True,
                      description=f"Whether to enable {name}.", pos=_caller_loc())
