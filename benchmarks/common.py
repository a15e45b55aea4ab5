"""What every benchmark here shares: finding this checkout's tools, the machine line, the table
format, and writing a benchmark's own section of RESULTS.md."""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
# The testbed OS: nixpkgs' `nixos/` stand-in that nixus builds testbed nodes with.
TESTBED_OS = ROOT / "nixus_py" / "testbed" / "os" / "nixos"


@dataclass(frozen=True)
class Tools:
    """What the timed commands run: this checkout's nixus and the nixpkgs lib (for fleet.nix and
    the Nix side of a comparison)."""

    benchmark: str
    nixus: str
    nixpkgs_lib: Path

    def env(self, state: Path | None = None) -> dict[str, str]:
        """nixus reads fleet.nix with this nixpkgs lib and keeps its state in `state` when given,
        whatever the caller's environment says."""
        env = {**os.environ, "NIXUS_NIXPKGS_LIB": str(self.nixpkgs_lib)}
        if state is not None:
            env["NIXUS_STATE_DIR"] = str(state)
        return env


def find_tools(benchmark: str, *commands: str) -> Tools:
    """This checkout's `nixus` (its venv first), the nixpkgs lib as scripts/env finds it
    (NIXUS_NIXPKGS_LIB, else ../shared/nixpkgs-lib/lib), and the Nix commands the benchmark runs."""
    venv = ROOT / ".venv" / "bin" / "nixus"
    nixus = str(venv) if venv.exists() else shutil.which("nixus")
    if nixus is None:
        sys.exit(f"{benchmark}: `nixus` not found: create the venv (./scripts/demo) or put nixus on PATH")
    missing = [c for c in commands if shutil.which(c) is None]
    if missing:
        sys.exit(f"{benchmark}: {', '.join(missing)} not found: install Nix (./scripts/demo does)")
    lib = os.environ.get("NIXUS_NIXPKGS_LIB")
    candidates = [Path(lib)] if lib else [ROOT.parent / "shared" / "nixpkgs-lib" / "lib"]
    for c in candidates:
        if (c / "default.nix").exists():
            return Tools(benchmark, nixus, c.resolve())
    sys.exit(f"{benchmark}: nixpkgs lib not found: set NIXUS_NIXPKGS_LIB to nixpkgs' lib directory")


def run(cmd: list[str], tools: Tools, cwd: Path, state: Path | None = None) -> tuple[float, str]:
    """Wall-clock seconds of one run of cmd, and its stdout; a nonzero exit stops the benchmark."""
    seconds, out, _ = run_capturing(cmd, tools, cwd, state)
    return seconds, out


def run_capturing(cmd: list[str], tools: Tools, cwd: Path, state: Path | None = None,
                  input: bytes | None = None, env: dict[str, str] | None = None) -> tuple[float, str, str]:
    """`run`, also giving stderr (where nixus reports progress), taking stdin and more
    environment variables."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, input=input, env={**tools.env(state), **(env or {})}, cwd=cwd)
    seconds = time.perf_counter() - start
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{tools.benchmark}: {shlex.join(cmd)} failed (exit {proc.returncode}):\n"
                 f"{(out[-2000:] + err[-3000:]).strip()}")
    return seconds, out, err


def delete_store_paths(benchmark: str, paths: list[str]) -> None:
    """Remove store paths a benchmark made, and their derivations (nothing else refers to them)."""
    if not paths:
        return
    drvs = subprocess.run(["nix-store", "-q", "--deriver", *paths], capture_output=True, text=True).stdout.split()
    for batch in (paths, [d for d in drvs if d.endswith(".drv")]):
        proc = subprocess.run(["nix-store", "--delete", *sorted(set(batch))], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{benchmark}: could not delete some store paths it made: {proc.stderr.strip()[-500:]}",
                  file=sys.stderr)


def use_checkout_python(benchmark: str) -> None:
    """Re-run the benchmark under the venv's Python when nixus's own package is not importable
    here: it records deploys through nixus's Python API, as the tests do."""
    try:
        import nixus_py  # noqa: F401
    except ImportError:
        venv = ROOT / ".venv" / "bin" / "python"
        if not venv.exists() or Path(sys.executable) == venv:
            sys.exit(f"{benchmark}: cannot import nixus_py: run it after `. scripts/env` or create the "
                     "venv (./scripts/demo)")
        os.execv(venv, [str(venv), *sys.argv])


def machine() -> str:
    """What the numbers were measured on, including whether nixus had uncommitted changes."""
    nix = subprocess.run(["nix-instantiate", "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "nixus_py"],
                           capture_output=True, text=True).stdout.strip()
    rev = git.stdout.strip() or "unknown"
    state = " with uncommitted changes in nixus_py/" if dirty else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (load average {load} at the end), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, {nix}; nixus at {rev}{state}")


def markdown_table(lines: list[list[str]]) -> str:
    """Rows (the first one the header) as a Markdown table that reads as plain text too."""
    widths = [max(len(line[c]) for line in lines) for c in range(len(lines[0]))]
    out = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def record(section: str) -> None:
    """Write or replace the section (headed by its first line, `## <benchmark>`) in RESULTS.md,
    keeping the other sections."""
    heading = section.split("\n", 1)[0]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + "\n" + (text[end:] if end >= 0 else "")
    RESULTS.write_text(text.rstrip("\n") + "\n")


def command_line(name: str) -> str:
    """How this benchmark was run, as RESULTS.md records it."""
    return shlex.join(["python", f"benchmarks/{name}.py", *sys.argv[1:]])


def publish(section: str, no_record: bool) -> None:
    """Print a benchmark's section and, unless told not to, record it in RESULTS.md."""
    print(section)
    if not no_record:
        record(section)
        print(f"(recorded in {RESULTS.relative_to(ROOT)})", file=sys.stderr)


def arguments(doc: str, repeat: int, repeat_help: str, keep_help: str,
              sizes: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark takes (--repeat, --keep, --no-record), and --sizes when the
    benchmark measures fleets of several sizes (`sizes`: the default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if sizes is not None:
        parser.add_argument("--sizes", default=sizes, help="node counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    parser.add_argument("--keep", type=Path, help=keep_help)
    parser.add_argument("--no-record", action="store_true", help="do not update benchmarks/RESULTS.md")
    return parser


def parse(parser: argparse.ArgumentParser, least_nodes: int = 2) -> argparse.Namespace:
    """The checked arguments; --sizes (if any) as a sorted list of at least `least_nodes` each."""
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    if hasattr(args, "sizes"):
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
        if not args.sizes or min(args.sizes) < least_nodes:
            parser.error(f"--sizes: at least one size, each at least {least_nodes} node{'s' * (least_nodes > 1)}")
    return args


def section_head(section: str, command: str, machine_note: str = "") -> list[str]:
    """A results section's first lines: its heading, the command and when it ran, the machine."""
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return [section, "", f"Command: `{command}`, run {date}.  ", f"Machine: {machine()}{machine_note}.", ""]


def verdict(met: bool) -> str:
    """How a target reads in RESULTS.md."""
    return "met" if met else "MISSED"


def ed25519_key(seed: str, comment: str) -> str:
    """A well-formed OpenSSH ed25519 public key line, the same for the same seed on every run."""
    def field(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b
    blob = field(b"ssh-ed25519") + field(hashlib.sha256(seed.encode()).digest())
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def usable_oracle(source: Path, lib: Path, into: Path) -> Path:
    """Real Nixus's oracle (NIXUS_ORACLE) as Nix can run it: a copy of its own files in `into`,
    with its stand-in's `lib` made a symlink to the nixpkgs lib at `lib` (the shared copy holds
    that link as a plain file, a checkout that lost its symlinks, which Nix reads as a path)."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "crosshost.nix", into)
    shutil.copytree(source / "nixos-stand-in", into / "nixos-stand-in", symlinks=True)
    link = into / "nixos-stand-in" / "lib"
    link.chmod(0o644)
    link.unlink()
    link.symlink_to(lib)
    (into / "nixus").symlink_to(source / "nixus")
    return into
