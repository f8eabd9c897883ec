"""Write ``predictions.csv``: two models' scores on 1,600 synthetic test images of 800 patients,
with a known bias injected into the first model (``python examples/data/make_predictions.py``).

Columns: ``patient_id``, ``sex`` (F/M), ``age`` (years, continuous: the spec bins it), ``site``
(A/B/C), ``label`` (0/1), ``model_v1`` and ``model_v2`` (probabilities), ``fold`` (``val`` for
a fifth of the patients, whose rows only fix operating points; ``test`` otherwise).

The injected bias: on positive images of women, ``model_v1``'s logit is lowered by
:data:`WOMEN_SHIFT`, so its true positive rate (sensitivity) at 0.5 is lower for women than for
men (0.53 against 0.91 on the test rows); ``model_v2`` keeps only a fifth of that shift (0.88
against 0.92).
Everything is seeded: running the script again writes the same file byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2024
N_PATIENTS = 800
IMAGES_PER_PATIENT = 2
#: Logit shift on women's positive images in model_v1 (model_v2 keeps a fifth of it).
WOMEN_SHIFT = 1.4
OUT = Path(__file__).resolve().parent / "predictions.csv"


def make() -> pd.DataFrame:
    """The table (deterministic)."""
    rng = np.random.default_rng(SEED)
    patient = np.repeat(np.arange(N_PATIENTS), IMAGES_PER_PATIENT)
    n = len(patient)
    sex = rng.choice(["F", "M"], N_PATIENTS)[patient]
    age = np.clip(rng.normal(58, 15, N_PATIENTS), 18, 95).round()[patient]
    site = rng.choice(["A", "B", "C"], N_PATIENTS, p=[0.5, 0.3, 0.2])[patient]
    label = (rng.random(n) < 0.3).astype(int)
    signal = np.where(label == 1, 1.5, -1.5) + rng.normal(0, 1.0, n)
    women_pos = (sex == "F") & (label == 1)
    logit_v1 = signal - WOMEN_SHIFT * women_pos
    logit_v2 = signal - 0.2 * WOMEN_SHIFT * women_pos + rng.normal(0, 0.3, n)
    fold = np.where(rng.random(N_PATIENTS) < 0.2, "val", "test")[patient]
    return pd.DataFrame({
        "patient_id": [f"PT{p:04d}" for p in patient], "sex": sex, "age": age.astype(int), "site": site,
        "label": label, "model_v1": _prob(logit_v1), "model_v2": _prob(logit_v2), "fold": fold,
    })


def _prob(logit: np.ndarray) -> np.ndarray:
    return np.round(1.0 / (1.0 + np.exp(-logit)), 4)


def main() -> None:
    make().to_csv(OUT, index=False, lineterminator="\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
