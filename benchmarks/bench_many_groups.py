"""Benchmark: an audit whose sensitive column has a distinct value on almost every row.

Run ``python benchmarks/bench_many_groups.py`` (``--groups 100000``; ``--groups 5000`` for a
quick run; ``--formats html,pdf`` to time the PDF too).  It writes a CSV table of ``--rows``
rows (default: ``groups`` + 20%) with a ``site`` column of ``--groups`` distinct values plus a
``sex`` column, a spec auditing both (``logistic`` baseline, group metrics, 50 bootstrap
resamples), then runs ``python -m fairaudit run`` in a subprocess and prints

* the exit code and wall time, the child's peak resident memory (``ru_maxrss`` of the children);
* the number of warnings in ``result.json``, its size, and the size of each report;
* how many per-group rows ``result.json`` holds (summed over every metric result).

The parent imports only the standard library (a child's ``ru_maxrss`` starts from the parent's
peak at fork time).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SPEC = textwrap.dedent("""\
    name: many_groups
    seed: 0
    dataset:
      name: table
      params: {{path: data.csv, target: y, sensitive: [sex, site], features: [f0, f1, f2]}}
    attributes: [sex, site]
    model: logistic
    metrics: [group_metrics]
    statistics: {{n_boot: 50, n_permutations: 50, min_group_size: 30}}
    report: {{formats: [{formats}]}}
    """)


def write_data(folder: Path, rows: int, groups: int) -> None:
    rng = random.Random(0)
    with open(folder / "data.csv", "w", encoding="utf-8") as fh:
        fh.write("f0,f1,f2,sex,site,y\n")
        for i in range(rows):
            y = rng.random() < 0.3
            site = f"site_{i % groups:06d}"
            fh.write(f"{rng.gauss(y, 1):.4f},{rng.gauss(0, 1):.4f},{rng.gauss(0, 1):.4f},"
                     f"{'FM'[rng.random() < 0.5]},{site},{int(y)}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--formats", default="html")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    rows = args.rows or int(args.groups * 1.2)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fa-many-groups-"))
    work.mkdir(parents=True, exist_ok=True)
    write_data(work, rows, args.groups)
    (work / "spec.yaml").write_text(SPEC.format(formats=", ".join(args.formats.split(","))))
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "fairaudit", "run", "spec.yaml", "-o", "out", "-q"],
                             cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = child.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
    wall = time.perf_counter() - start
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    runs = sorted((work / "out").glob("*/*/result.json"))
    print(f"groups={args.groups} rows={rows} exit={child.returncode} wall={wall:.1f}s peak_rss={peak_mb:.0f}MB")
    lines = out.decode(errors="replace").splitlines()
    print(f"console lines={len(lines)} console bytes={len(out):,}")
    if runs:
        result_path = runs[-1]
        result = json.loads(result_path.read_text(encoding="utf-8"))
        per_group = sum(len(m.get("per_group", [])) for arm in result["arms"] for m in arm["metrics"])
        print(f"warnings={len(result['warnings'])} result.json={result_path.stat().st_size:,} bytes "
              f"per_group rows={per_group:,}")
        for report in sorted(result_path.parent.glob("report.*")):
            print(f"{report.name}={report.stat().st_size:,} bytes")
    print("\n".join(lines[-5:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
