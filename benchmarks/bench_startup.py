"""Start-up time of the core and the CLI against ``python -c pass``, all measured in one run.

    python benchmarks/bench_startup.py                 # median of 5 runs per command
    python benchmarks/bench_startup.py --repeat 9      # more runs, steadier medians
    python benchmarks/bench_startup.py --baseline OLD  # also time another checkout, same rounds

Every command runs in a fresh interpreter (the same one running this script) with the repository
root (and its plugins' folders) first on ``PYTHONPATH``. The runs are interleaved (one round runs
every command once) so a burst of load from other jobs hits all of them alike. Besides the medians
it prints the excess over ``python -c pass`` and which heavy libraries each command imported.
Bytecode is cached (``__pycache__``, as pip's install compiles it), the first run of each command
warms the cache and is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Libraries a light command must not import (the acceptance of issue 12, scipy for information).
HEAVY = ("sklearn", "pandas", "torch", "scipy")
#: Limit the issue sets for ``fairaudit --help`` and ``fairaudit validate`` (seconds, median).
TARGET_S = 0.5
CLI = "from fairaudit.cli.app import main; import sys; sys.argv[0] = 'fairaudit'; main()"
REPORT = ("import atexit, sys\n"
          "atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules)"
          " + '\\n'))\n")


def commands(spec: Path) -> dict[str, tuple[str, list[str]]]:
    """Label -> (``python -c`` source, arguments) of each timed command; the CLI is called as its
    console script calls it."""
    return {
        "python -c pass": ("pass", []),
        "import fairaudit": ("import fairaudit", []),
        "import fairaudit.base": ("import fairaudit.base", []),
        "fairaudit --help": (CLI, ["--help"]),
        f"fairaudit validate {spec.name}": (CLI, ["validate", str(spec)]),
    }


def environment(root: Path) -> dict[str, str]:
    """``PYTHONPATH`` with ``root`` and its plugins (as the editable installs would)."""
    paths = [str(root), *(str(p) for p in sorted((root / "plugins").glob("*/")) if p.is_dir())]
    custom = root / "examples" / "custom_debiaser"
    if custom.is_dir():
        paths.append(str(custom))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cache bytecode, as an installed package has it
    return env


def time_once(source: str, args: list[str], env: dict[str, str], cwd: Path,
              heavy: bool = False) -> tuple[float, str]:
    """Wall time of one fresh interpreter running ``source`` in ``cwd`` (``-c`` puts the working
    folder first on ``sys.path``); with ``heavy``, also which heavy libraries it imported."""
    code = (REPORT.format(heavy=HEAVY) if heavy else "") + source
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {source} {' '.join(args)}\n{proc.stderr}")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")]
    return elapsed, lines[-1].removeprefix("HEAVY=") if lines else ""


def measure(root: Path, spec: Path | None) -> Table:
    """Medians (and minima, heavy imports) of every command for the checkout at ``root``."""
    env = environment(root)
    todo = commands((spec or root / "examples" / "quickstart.yaml").resolve())
    heavy = {label: time_once(src, args, env, root, heavy=True)[1] for label, (src, args) in todo.items()}
    return Table(root, todo, env, heavy, {label: [] for label in todo})


class Table:
    """Timings of one checkout, filled one round at a time."""

    def __init__(self, root: Path, todo: dict[str, tuple[str, list[str]]], env: dict[str, str],
                 heavy: dict[str, str], times: dict[str, list[float]]):
        self.root, self.todo, self.env, self.heavy, self.times = root, todo, env, heavy, times

    def round(self) -> None:
        for label, (src, args) in self.todo.items():
            self.times[label].append(time_once(src, args, self.env, self.root)[0])

    def medians(self) -> dict[str, float]:
        return {label: statistics.median(ts) for label, ts in self.times.items()}

    def show(self) -> None:
        medians = self.medians()
        floor = medians["python -c pass"]
        print(f"\nroot: {self.root}")
        print(f"{'command':<36} {'median s':>9} {'min s':>7} {'x pass':>7} {'excess s':>9}  heavy imports")
        for label, med in medians.items():
            print(f"{label:<36} {med:9.3f} {min(self.times[label]):7.3f} {med / floor:7.1f} {med - floor:9.3f}  "
                  f"{self.heavy[label] or '-'}")
        slow = [label for label in medians if label.startswith("fairaudit ") and medians[label] >= TARGET_S]
        print(f"target: fairaudit --help and validate < {TARGET_S} s (median): "
              + ("met" if not slow else f"missed by {', '.join(slow)}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median reported)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to time (default: this one)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. `git archive` of an older commit), timed in the same rounds")
    parser.add_argument("--spec", type=Path, default=None, help="spec for validate (default: quickstart)")
    opts = parser.parse_args()
    tables = [measure(r.resolve(), opts.spec) for r in (opts.baseline, opts.root) if r is not None]
    for _ in range(opts.repeat):  # interleaved rounds: load from other jobs hits every command alike
        for table in tables:
            table.round()
    print(f"python {sys.version.split()[0]}, {opts.repeat} runs per command, load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    for table in tables:
        table.show()
    if len(tables) == 2:
        before, after = (t.medians() for t in tables)
        print("\nafter / before (medians): " + ", ".join(
            f"{label} {before[label]:.2f} -> {after[label]:.2f} s" for label in after if label != "python -c pass"))


if __name__ == "__main__":
    main()
