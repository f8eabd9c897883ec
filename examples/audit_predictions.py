"""Audit a model you already have, from Python (a notebook in script form: run it cell by cell,
or whole: ``python examples/audit_predictions.py [OUTPUT_FOLDER] [N_BOOT]``).

The table holds two model versions' scores on the same test images, with labels, patient ids
and demographics (written by ``examples/data/make_predictions.py``, with a known sensitivity
gap for women in ``model_v1``).  No model is trained, and torch is never imported.
"""

# %% Settings
import sys
from pathlib import Path

import pandas as pd

import fairaudit

HERE = Path(__file__).resolve().parent
OUTPUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("reports")
N_BOOT = int(sys.argv[2]) if len(sys.argv) > 2 else 1000

# %% Your scores, labels and groups: any DataFrame (or the path of a CSV/Parquet file)
df = pd.read_csv(HERE / "data" / "predictions.csv")
print(df.head())

# %% The audit: one call; each score column is an arm, the first the reference
result = fairaudit.audit_predictions(
    df,
    target="label",
    score={"model_v1": "model_v1", "model_v2": "model_v2"},
    sensitive=["sex", "age", "site"],
    patient_id="patient_id",
    split_column="fold",  # rows with fold == "val" only fix operating points
    bins={"age": {"edges": [0, 50, 65, 120], "labels": ["<50", "50-64", "65+"]}},
    thresholds={"equal_opportunity_difference": {"max": 0.1, "attribute": "sex"}},
    statistics={"n_boot": N_BOOT, "n_permutations": 1000},  # a FAIL needs a permutation p this fine
    title="Audit of given scores: pneumonia model v1 and v2",
    output=OUTPUT,
    name="predictions-notebook",
)
print("run folder:", result.run_dir)

# %% Every number as a DataFrame: one row per arm, metric, attribute and group
table = result.to_frame()
sensitivity = table[(table.metric == "true_positive_rate") & (table.attribute == "sex")]
print(sensitivity[["arm", "group", "value", "ci_low", "ci_high", "n"]].to_string(index=False))

# %% The declared threshold, judged with the confidence interval in view
for v in result.verdicts:
    print(f"{v.arm:9} {v.metric} ({v.attribute}): {v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}] -> {v.outcome}")

# %% model_v2 against model_v1 on the same patients (paired bootstrap)
changes = table[(table.role == "change") & (table.arm == "model_v2")]
print(changes[["metric", "attribute", "value", "ci_low", "ci_high"]].to_string(index=False))

# %% The report for the review board (add "pdf" where WeasyPrint is installed)
written = result.write_report(OUTPUT / "board-report", formats=("html",))
print("report:", written["html"])
