"""Benchmark: a fairness audit of embeddings that do not fit in memory, against loading them naively.

Run ``python benchmarks/bench_out_of_core.py`` (``--rows 20000`` for a quick run).  It

1. writes ``--rows`` x ``--dim`` float32 embeddings (default 1,000,000 x 1408, about 5.6 GB) to
   ``--workdir`` chunk by chunk, with a sex signal and a disease-label signal along random
   directions, and a Parquet metadata table (patients with two rows each, sex, label; 15% of
   the women's positive labels are hidden, so the audit has a gap to find);
2. writes a spec: ``embeddings_npy`` dataset, ``logistic`` baseline (streaming), group metrics
   with the default 1000 bootstrap resamples, a linear ``attribute_probe`` of sex (subsampled
   with ``max_rows``), HTML report;
3. runs ``python -m fairaudit run spec.yaml`` in a subprocess and reports its wall time and
   peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``), PASS when under
   ``--limit-gb`` (default 8);
4. measures the peer in the same run: the peak RSS of a subprocess that naively loads the same
   ``.npy`` with ``np.load`` (no memory map), and prints the ratio naive / ours.

This parent process imports only the standard library and leaves data generation to a child:
a child's ``ru_maxrss`` starts from the parent's peak at fork time, so a heavy parent would
inflate every figure.  Resident memory excludes the OS page cache, which holds the file's pages
while the audit reads them (that memory is the kernel's and is reclaimed under pressure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

GIB = 1024**3
SPEC = textwrap.dedent("""\
    name: out_of_core_bench
    seed: 0
    dataset:
      name: embeddings_npy
      params: {{features: emb.npy, metadata: meta.parquet, target: label, sensitive: [sex],
                patient_id: patient}}
    attributes: [sex]
    split: {{test_size: 0.2, val_size: 0.1, stratify: [sex]}}
    model: {{name: logistic}}
    metrics:
      - group_metrics
      - name: attribute_probe
        params: {{probes: [linear], cv_folds: 3, max_rows: {max_rows}, max_samples: {max_samples}}}
    statistics: {{n_boot: {n_boot}}}
    report: {{formats: [html]}}
    """)


# ---------------------------------------------------------------------- child: data generation
def generate(workdir: Path, rows: int, dim: int, seed: int, chunk_rows: int = 16384) -> None:
    """Write ``emb.npy`` (C-ordered float32, chunk by chunk) and ``meta.parquet`` to ``workdir``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_pat = (rows + 1) // 2
    patient = np.arange(rows) // 2
    male = (rng.random(n_pat) < 0.5)[patient]
    disease = (rng.random(n_pat) < 0.3)[patient]
    hidden = disease & ~male & (rng.random(rows) < 0.15)  # under-diagnosis of women
    label = (disease & ~hidden).astype(np.int8)
    u_sex, u_label = (v / np.linalg.norm(v) for v in rng.normal(size=(2, dim)))
    u_sex, u_label = u_sex.astype(np.float32), u_label.astype(np.float32)
    path = workdir / "emb.npy"
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (rows, dim)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for i, start in enumerate(range(0, rows, chunk_rows)):
            stop = min(rows, start + chunk_rows)
            block = np.random.default_rng([seed, i]).standard_normal((stop - start, dim), dtype=np.float32)
            block += np.outer(3.0 * (male[start:stop] - 0.5), u_sex).astype(np.float32)
            block += np.outer(2.5 * (disease[start:stop] - 0.5), u_label).astype(np.float32)
            fh.write(block.tobytes())
    meta = pd.DataFrame({"patient": patient.astype(np.int64), "sex": np.where(male, "M", "F"), "label": label})
    meta.to_parquet(workdir / "meta.parquet", index=False)
    (workdir / "generated.json").write_text(json.dumps({"rows": rows, "dim": dim, "seed": seed}))


# ---------------------------------------------------------------------- parent: measurements
def measure(cmd: list[str], log: Path, cwd: Path) -> tuple[int, float, float]:
    """Run ``cmd``; return (exit code, wall seconds, peak RSS in GiB of that child)."""
    env = {**os.environ, "FAIRAUDIT_NO_PROGRESS": "1"}
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss * 1024 / GIB


def summarise(run_root: Path) -> list[str]:
    """A few headline numbers from the run's result.json."""
    results = sorted(run_root.glob("*/*/result.json"))
    if not results:
        return ["no result.json written"]
    result = json.loads(results[-1].read_text())
    lines = []
    for arm in result["arms"]:
        for m in arm.get("metrics", []):
            if m["metric"] in ("roc_auc", "attribute_probe_auc", "equal_opportunity_difference") and \
                    m.get("value") is not None:
                ci = f" [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m.get("ci_low") is not None else ""
                what = m["metric"] + (f" ({m['attribute']})" if m.get("attribute") else "")
                lines.append(f"{arm['name']}: {what} = {m['value']:.3f}{ci}")
            notes = [n for n in m.get("notes", []) if "subsampled" in n]
            if notes and m["metric"] == "attribute_probe_auc":
                lines.append(f"  note: {notes[0]}")
    timings = result.get("provenance", {}).get("timings", {})
    if timings:
        lines.append("stage timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="embeddings (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=1408, help="embedding width (default 1408)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the data and run (default: a temporary folder, removed afterwards); "
                             "data already there with the same rows/dim/seed is reused")
    parser.add_argument("--limit-gb", type=float, default=8.0, help="peak-RSS budget of the audit (GiB)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--probe-rows", type=int, default=20000, help="attribute_probe max_rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true", help="do not measure the naive np.load peer")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def ensure_data(args: argparse.Namespace, workdir: Path) -> float:
    """Generate the data in a child process unless it is already there; returns seconds taken."""
    stamp = workdir / "generated.json"
    wanted = {"rows": args.rows, "dim": args.dim, "seed": args.seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted and (workdir / "emb.npy").is_file():
        print(f"reusing the data in {workdir}")
        return 0.0
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--generate-only", "--rows", str(args.rows), "--dim", str(args.dim),
                    "--seed", str(args.seed), "--workdir", str(workdir)], check=True)
    return time.perf_counter() - start


def main() -> int:
    args = parse_args()
    if args.generate_only:
        generate(args.workdir, args.rows, args.dim, args.seed)
        return 0
    own_tmp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="fairaudit-ooc-")) if own_tmp else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, workdir)
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {sys.version.split()[0]}, {cores} CPU core(s) available, workdir {workdir}")
    took = ensure_data(args, workdir)
    size = (workdir / "emb.npy").stat().st_size / GIB
    print(f"embeddings: {args.rows:,} x {args.dim} float32 = {size:.2f} GiB on disk"
          + (f" (generated in {took:.0f} s)" if took else ""))
    max_rows = min(args.probe_rows, args.rows)
    spec = workdir / "spec.yaml"
    spec.write_text(SPEC.format(max_rows=max_rows, max_samples=min(10000, max_rows), n_boot=args.n_boot))
    reports = workdir / "reports"
    shutil.rmtree(reports, ignore_errors=True)

    code, wall, peak = measure([sys.executable, "-m", "fairaudit", "run", str(spec), "-o", str(reports), "-q"],
                               workdir / "audit.log", workdir)
    print(f"\n[1] audit (embeddings_npy -> streaming logistic -> group_metrics with {args.n_boot} resamples, "
          f"attribute_probe max_rows={max_rows}, HTML report)")
    print(f"    exit code {code}, wall time {wall:.0f} s, peak RSS {peak:.2f} GiB "
          f"(limit {args.limit_gb:g} GiB): {'PASS' if code in (0, 1) and peak < args.limit_gb else 'FAIL'}")
    if code not in (0, 1):
        print((workdir / "audit.log").read_text()[-3000:])
    for line in summarise(reports):
        print(f"    {line}")

    if not args.skip_naive:
        naive = ("import sys, numpy as np; X = np.load(sys.argv[1]); "
                 "print(float(X[:, 0].sum()))")
        ncode, nwall, npeak = measure([sys.executable, "-c", naive, str(workdir / "emb.npy")],
                                      workdir / "naive.log", workdir)
        print("\n[2] peer: np.load of the same .npy without a memory map (nothing else)")
        print(f"    exit code {ncode}, wall time {nwall:.0f} s, peak RSS {npeak:.2f} GiB")
        print(f"    peak RSS naive load / our whole audit: {npeak / peak:.1f}x")
    return 0 if code in (0, 1) and peak < args.limit_gb else 1


if __name__ == "__main__":
    sys.exit(main())
