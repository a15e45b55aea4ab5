"""Evaluating a fleet file (fleet.py or fleet.nix) into one lazy module-system evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..evaluate.errors import NixusError
from ..evaluate.location import Loc, set_display_base
from ..evaluate.modules import ConfigProxy, Evaluation
from .. import settings
from ..present import to_data
from .core import NIXUS_ONLY, fleet_module
from .formats import KEY_NAME, KEY_NAME_RULE, NODE_NAME, NODE_NAME_RULE
from .lock import lock_entry, lock_path, public_keys, read_lock, write_lock
from .provenance import Fact

DEFAULT_FILES = ("fleet.py", "fleet.nix")


def bundled_modules() -> list[str]:
    """Paths of the bundled modules (`modules/*.py`), in a stable order."""
    return sorted(str(p) for p in settings.BUNDLED.glob("*.py"))


def find_fleet_file(path: str | Path | None) -> Path:
    """The fleet file: the one given, else ./fleet.py, else ./fleet.nix."""
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise NixusError(f"fleet file {p} does not exist")
        return p
    for name in DEFAULT_FILES:
        if Path(name).exists():
            return Path(name)
    raise NixusError("no fleet file: pass -f FILE, or run where fleet.py or fleet.nix is")


def evaluate_fleet(path: str | Path | None = None, lock: dict | None = None) -> Evaluation:
    """The evaluated fleet, given the lock's content; values are computed when read (fleet.nix
    settles in a few Nix rounds). Most callers want `load_fleet`, which also maintains the lock."""
    file = find_fleet_file(path).resolve()
    set_display_base(str(file.parent))
    lock_module = {"_file": Loc(str(lock_path(file))), "lock": lock if lock is not None else read_lock(file)}

    def make() -> Evaluation:
        modules = [fleet_module, *bundled_modules(), lock_module, str(file)]
        ev = Evaluation(modules, file=Loc(str(file)))
        ev.special_args["nodes"] = ConfigProxy(ev, ("nodes",))
        return ev

    if file.suffix == ".nix":
        from ..source.nixfile import NixSession, evaluate_with_nix  # only fleet.nix needs Nix: startup time
        return evaluate_with_nix(make, NixSession(file))
    return make()


def _check_nodes(ev: Evaluation) -> None:
    """Before anything is made from them: every node's name is one that its files and `--on` can
    use, every generated key's name one its key file can have, and no node sets an option of
    Nixus's that nixus does not run (found among the definitions, so that no node is evaluated
    for it)."""
    nodes = Fact(ev.options["nodes"], ("nodes",))
    for name in ev.config["nodes"]:
        if not isinstance(name, str) or not NODE_NAME.fullmatch(name):
            raise nodes.error((name,), f"is not a valid node name: {NODE_NAME_RULE}")
        for option, why in NIXUS_ONLY.items():
            if nodes.defined_at((name, option)):
                raise nodes.error((name, option), f"is an option of Nixus's that nixus does not run: {why}")
    defaults = Fact(ev.options["defaults"], ("defaults",))
    for option, why in NIXUS_ONLY.items():
        if defaults.defined_at((option,)):
            raise defaults.error((option,), f"is an option of Nixus's that nixus does not run: {why}")
    keys = Fact(ev.options["generatedKeys"], ("generatedKeys",))
    for name in ev.config["generatedKeys"]:
        if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
            raise keys.error((name,), f"is not a valid key name: {KEY_NAME_RULE}")


@dataclass
class Fleet:
    """An evaluated fleet with its file, state directory and up-to-date lock."""

    file: Path
    evaluation: Evaluation
    state_dir: Path
    lock_changed: bool

    @property
    def config(self) -> ConfigProxy:
        return self.evaluation.config

    @property
    def rendered_dir(self) -> Path:
        """Where `nixus build` writes each node's module: what a deploy records as rendered."""
        return self.state_dir / "build" / "rendered"


def load_fleet(path: str | Path | None = None, write: bool = True) -> Fleet:
    """Evaluate the fleet, create missing generated keys, and bring fleet.lock.json up to date;
    without `write` (the commands that only read), change no file: keys not made yet are missing
    from the evaluation, and the lock is what it would become."""
    file = find_fleet_file(path)
    state = settings.state_dir(file)
    lock = read_lock(file)
    ev = evaluate_fleet(file, lock)
    _check_nodes(ev)
    wanted = dict(ev.config["generatedKeys"])
    have = lock_entry(lock, "keys")
    public = public_keys(state, wanted, make=write)
    missing = {name: kind for name, kind in wanted.items()
               if name in public and lock_entry(lock, "keys", name).get("publicKey") != public[name]}
    if missing:
        keys = dict(have)
        for name, kind in missing.items():
            keys[name] = {"publicKey": public[name], "kind": kind}
        lock = {**lock, "keys": keys}
        ev = evaluate_fleet(file, lock)
    desired = {section: value for section, value in to_data(ev.config["lockFile"]).items() if value}
    changed = write and (desired or lock_path(file).exists()) and write_lock(file, desired)
    return Fleet(file, ev, state, bool(changed))
