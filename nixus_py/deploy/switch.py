"""The deployer's side of switch-then-confirm: start the host's switcher, follow its states as
the host reports them, and confirm over a new connection; the host rolls itself back when no
confirmation comes.

The switcher (switcher.sh, run on the host detached from the session that starts it) is
driven by three commands: `start` (follows the switch until the new system is active),
`confirm` (run over the new connection, follows it to the end) and `watch` (follows it again
after a dropped connection). No polling from here. How the commands reach the host is the
`Host`'s business.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .goals import SHOWN, Goal, Step, SwitchState
from .host import Host, HostError

SWITCHER = Path(__file__).with_name("switcher.sh")
REMOTE_SWITCHER = "/run/nixus/switcher.sh"
_RUN_SWITCHER = f'exec "$(command -v bash || echo /bin/sh)" {REMOTE_SWITCHER}'


@dataclass(frozen=True)
class SwitchRequest:
    """One switch: its id (which names its directory on the host), the system and the goal."""

    id: str
    system: str
    goal: Goal
    switch_timeout: int
    success_timeout: int
    previous: str | None = None  # what the host ran before

    @property
    def activation_limit(self) -> int:
        """Seconds from the start until the new system is active, at the most."""
        return self.switch_timeout + 30

    @property
    def limit(self) -> int:
        """Seconds from activation to the switch's end, at the most (confirmation, or rollback)."""
        return self.success_timeout + self.switch_timeout + 30

    def start(self) -> str:
        """The command that installs the switcher (given as its input), starts it and follows it
        until the new system is active."""
        args = " ".join(shlex.quote(str(a)) for a in (self.id, self.system, self.goal, self.switch_timeout,
                                                      self.success_timeout))
        return (f"mkdir -p -m 700 /run/nixus && cat > {REMOTE_SWITCHER}.new && "
                f"mv -f {REMOTE_SWITCHER}.new {REMOTE_SWITCHER} && {_RUN_SWITCHER} start {args}")

    def watch(self, until: str) -> str:
        """The command that follows the switch until `activated` or `final`; the seconds it may
        take go after it."""
        return f"{_RUN_SWITCHER} watch {shlex.quote(self.id)} {until}"

    def heal(self) -> str:
        """The command that installs the switcher again (given as its input: the host may have
        restarted) and has it finish or undo a commit that did not end (see `lost`)."""
        return (f"mkdir -p -m 700 /run/nixus && cat > {REMOTE_SWITCHER}.new && "
                f"mv -f {REMOTE_SWITCHER}.new {REMOTE_SWITCHER} && {_RUN_SWITCHER} heal {shlex.quote(self.id)}")

    def confirm(self) -> str:
        """The command that confirms the switch and follows it to its end."""
        return f"{_RUN_SWITCHER} confirm {shlex.quote(self.id)} {self.limit}"


@dataclass
class SwitchOutcome:
    """How a switch ended on the host, in the host's own words."""

    state: SwitchState
    old: str | None
    log: str

    @property
    def ok(self) -> bool:
        return self.state.ok


@dataclass
class SwitchReport:
    """What the host's switcher has said so far: states, then the final record (the previous
    system and the activation log). Its lines go to `line`, whichever command printed them."""

    on_phase: Callable[[str], None]
    state: SwitchState | None = None
    old: str | None = None
    log: list[str] = field(default_factory=list)
    in_log: bool = False
    note: str = ""  # what nixus adds to the host's words (why it did not confirm, say)

    @property
    def final(self) -> bool:
        return self.state is not None and self.state.final

    @property
    def activated(self) -> bool:
        return self.state is not None and self.state.step is Step.ACTIVATED

    def line(self, text: str) -> None:
        if self.in_log:
            self.log.append(text)
        elif text == "log":
            self.in_log = True
        elif text.startswith("old "):
            self.old = text[4:].strip() or None
        elif text.startswith("state "):
            state = SwitchState.parse(text[6:])
            if state is not None and state != self.state:
                self.state = state
                if state.step in SHOWN:
                    self.on_phase(str(state.step))

    def outcome(self) -> SwitchOutcome:
        state = self.state or SwitchState(Step.FAILED, "the switcher left no state")
        if self.note:
            state = SwitchState(state.step, f"{state.why} ({self.note})" if state.why else self.note)
        return SwitchOutcome(state, self.old, "\n".join(self.log))


@dataclass(frozen=True)
class Healed:
    """What a host said after nixus lost its switch (`switcher.sh heal`): the switch's state if
    its record is still there (None: gone, the host restarted), what the host runs and boots,
    and what the switcher did to a commit that had not ended."""

    state: SwitchState | None
    current: str | None
    boot: str | None
    healed: str = ""

    @classmethod
    def parse(cls, text: str) -> Healed:
        said = dict(line.partition(" ")[::2] for line in text.splitlines() if line)
        state = SwitchState.parse(said["switch"]) if "switch" in said else None
        return cls(state, said.get("current") or None, said.get("boot") or None, said.get("healed", ""))


def lost(request: SwitchRequest, report: SwitchReport, healed: Healed) -> SwitchOutcome:
    """How a switch ended that nixus stopped hearing from, from what the host says now."""
    log = "\n".join(report.log)
    if healed.state is not None and healed.state.final:  # it ended; only the news was lost
        return SwitchOutcome(healed.state, report.old or request.previous, log)
    if healed.state is not None:
        last = str(healed.state)
        return SwitchOutcome(SwitchState(Step.FAILED, f"the switch did not end in time (last state: {last}); "
                                         f"the host runs {healed.current or 'nothing'} and boots {healed.boot or 'nothing'}"),
                             request.previous, log)

    def named(path: str | None) -> str:
        return {request.system: "the new system", request.previous: "the old system"}.get(path, path or "nothing")

    runs = (f"runs and boots {named(healed.current)}" if healed.boot == healed.current
            else f"runs {named(healed.current)} and boots {named(healed.boot)}")
    why = f"the host restarted during the switch; it {runs}"
    if healed.healed:
        why += f" (the switcher {healed.healed})"
    if healed.current == healed.boot == request.system and request.goal.persists:
        return SwitchOutcome(SwitchState(Step.COMMITTED, why), request.previous, log)
    if healed.current == healed.boot == request.previous:
        return SwitchOutcome(SwitchState(Step.ROLLED_BACK, why), request.previous, log)
    return SwitchOutcome(SwitchState(Step.FAILED, why), request.previous, log)


async def switch(host: Host, request: SwitchRequest, on_phase: Callable[[str], None]) -> SwitchOutcome:
    """Activate the request's system on the host with its goal's semantics; the host's final
    record."""
    report = SwitchReport(on_phase)
    await host.start_switch(request, report)
    if request.goal.needs_confirmation and report.activated:
        on_phase("confirming")
        await host.confirm(request, report)
    if not report.final:  # not confirmed (the host rolls back by itself), or the switch went wrong
        await host.follow(request, report)
    if not report.final and report.state is not None:  # the switcher is lost: ask the host itself
        try:
            return lost(request, report, await host.heal(request))
        except HostError as e:
            outcome = report.outcome()
            return SwitchOutcome(SwitchState(outcome.state.step, f"{outcome.state.why}; nixus lost the switch "
                                             f"and cannot ask the host what it runs ({e})"), outcome.old, outcome.log)
    return report.outcome()
