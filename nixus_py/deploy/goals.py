"""What a deploy aims at on a host (`Goal`), the states a switch goes through on the way
(`SwitchState`, as the host's switcher.sh writes them), and how a host's deploy ends (`Outcome`).

Plain data without asyncssh: the CLI checks `--goal` with it before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..evaluate.errors import NixusError


class Goal(StrEnum):
    """`--goal`, named as NixOS's `switch-to-configuration` names it (and passed to switcher.sh)."""

    SWITCH = "switch"
    BOOT = "boot"
    TEST = "test"
    DRY_ACTIVATE = "dry-activate"

    @classmethod
    def parse(cls, text: str) -> Goal:
        """The goal `--goal text` names; an error listing the goals for any other text."""
        try:
            return cls(text)
        except ValueError:
            raise NixusError(f"--goal {text}: expected one of {', '.join(cls)}") from None

    @property
    def activates(self) -> bool:
        """Whether the new system runs once the switch is done."""
        return self in (Goal.SWITCH, Goal.TEST)

    @property
    def persists(self) -> bool:
        """Whether the new system is what the host boots next (the system profile is set)."""
        return self in (Goal.SWITCH, Goal.BOOT)

    @property
    def needs_confirmation(self) -> bool:
        """Whether the host rolls back unless nixus gets in again over a new connection: what
        activates could lock nixus out."""
        return self.activates


class Step(StrEnum):
    """The steps of a switch, as switcher.sh names them in its state file."""

    ACTIVATING = "activating"
    ACTIVATED = "activated"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    COMMITTED = "committed"
    FAILED = "failed"
    DONE = "done"  # dry-activate ran (whatever it said)


FINAL = (Step.COMMITTED, Step.ROLLED_BACK, Step.FAILED, Step.DONE)
SHOWN = (Step.ACTIVATING, Step.ACTIVATED, Step.ROLLING_BACK)  # steps reported as progress


@dataclass(frozen=True)
class SwitchState:
    """One state of a switch: its step and, for some, why (`rolled-back: no confirmation`)."""

    step: Step
    why: str = ""

    @classmethod
    def parse(cls, text: str) -> SwitchState | None:
        """The state a switcher line names; None for no state yet (an empty line)."""
        name, _, why = text.partition(": ")
        if not name:
            return None
        try:
            return cls(Step(name), why)
        except ValueError:
            return cls(Step.FAILED, f"the switcher reported `{text}', which nixus does not know")

    @property
    def final(self) -> bool:
        return self.step in FINAL

    @property
    def ok(self) -> bool:
        return self.step in (Step.COMMITTED, Step.DONE)

    def __str__(self) -> str:
        return f"{self.step}: {self.why}" if self.why else str(self.step)


class Outcome(StrEnum):
    """How one host's deploy ended, as `nixus deploy` prints it."""

    SWITCHED = "switched"
    UNCHANGED = "unchanged"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"  # --dry-run: built and copied, nothing switched
    DRY_ACTIVATED = "dry-activated"  # --goal dry-activate: the host said what it would do

    @classmethod
    def of_switch(cls, state: SwitchState, goal: Goal) -> Outcome:
        """The outcome of a switch that ended in `state`."""
        if state.ok:
            return cls.DRY_ACTIVATED if goal is Goal.DRY_ACTIVATE else cls.SWITCHED
        return cls.ROLLED_BACK if state.step is Step.ROLLED_BACK else cls.FAILED

    @property
    def ok(self) -> bool:
        return self in (Outcome.SWITCHED, Outcome.UNCHANGED, Outcome.DRY_RUN, Outcome.DRY_ACTIVATED)

    @property
    def stops_others(self) -> bool:
        """Whether, without --keep-going, no more hosts start after this one."""
        return not self.ok and self is not Outcome.SKIPPED
