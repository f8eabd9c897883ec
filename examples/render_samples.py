"""Regenerate ``reports/samples/`` from the example specs: ``python examples/render_samples.py``.

Each example is run into a temporary folder; its report.html, report.pdf and result.json are
copied to ``reports/samples/<spec-name>/`` so reviewers can read them without installing anything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = ["quickstart.yaml", "embeddings_advvae.yaml", "cxr_shortcut.yaml",
                 "cxr_generators.yaml", "custom_debiaser/audit.yaml", "predictions.yaml"]


def main(argv: list[str] | None = None) -> int:
    from fairaudit import FairAuditError, run_audit

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("specs", nargs="*", default=DEFAULT_SPECS, help="Spec files under examples/.")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "samples")
    args = parser.parse_args(argv)
    failures = 0
    for name in args.specs:
        spec = REPO / "examples" / name
        print(f"== {spec.relative_to(REPO)}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                outcome = run_audit(spec, output_dir=Path(tmp), say=lambda m: print("  ", m, flush=True))
            except FairAuditError as exc:
                print(f"   FAILED: {exc}", file=sys.stderr)
                failures += 1
                continue
            target = args.out / outcome.result.name
            target.mkdir(parents=True, exist_ok=True)
            for fname in ("report.html", "report.pdf", "result.json", "spec.yaml"):
                if (outcome.run_dir / fname).is_file():
                    shutil.copyfile(outcome.run_dir / fname, target / fname)
            print(f"   -> {target.relative_to(REPO)}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
