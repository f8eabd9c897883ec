"""Conditions of a generator's synthetic set: ``sampling: as_data`` keeps the training split's
base rates and group sizes, ``balanced`` gives every (label, group) cell the same count; the
runner applies it to any generator (a transparent local one here)."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.errors import FairAuditError
from fairaudit.testing.runs import cli, load_result, run_dirs
from fairaudit.training import synthetic_rows

PLUGINS = Path(__file__).parent.parent / "local_plugins.py"


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Skewed cells: 80% men, prevalence 0.1 in women and 0.5 in men; a second attribute."""
    rng = np.random.default_rng(seed)
    sex = np.where(rng.random(n) < 0.8, "M", "F")
    y = (rng.random(n) < np.where(sex == "M", 0.5, 0.1)).astype(int)
    race = rng.choice(["a", "b"], n)
    return y, pd.DataFrame({"sex": sex, "race": race})


def test_balanced_gives_every_label_group_cell_the_same_count():
    y, sf = _data()
    rows = synthetic_rows(y, sf, 402, "balanced", attributes=["sex"], seed=1)
    cells = Counter(zip(y[rows].tolist(), sf["sex"].to_numpy()[rows].tolist(), strict=True))
    assert sorted(cells.values()) == [100, 100, 101, 101]  # 402 = 4 x 100 + 2 to the first cells
    assert set(cells) == {(0, "F"), (0, "M"), (1, "F"), (1, "M")}
    # rare cell (positive women, ~24 rows): drawn with replacement, but only from that cell
    pos_f = np.flatnonzero((y == 1) & (sf["sex"].to_numpy() == "F"))
    assert set(rows[np.isin(rows, pos_f)]) <= set(pos_f)


def test_balanced_over_several_attributes_crosses_them():
    y, sf = _data()
    rows = synthetic_rows(y, sf, 800, "balanced", seed=0)  # default: every sensitive column
    cells = Counter(zip(y[rows], sf["sex"].to_numpy()[rows], sf["race"].to_numpy()[rows], strict=True))
    assert len(cells) == 8 and set(cells.values()) == {100}


def test_as_data_keeps_the_data_rates_and_is_the_previous_draw():
    y, sf = _data(n=2000)
    rows = synthetic_rows(y, sf, 2000, "as_data", seed=3)
    np.testing.assert_array_equal(rows, np.random.default_rng(3).choice(2000, size=2000, replace=False))
    big = synthetic_rows(y, sf, 6000, "as_data", seed=3)
    assert abs((sf["sex"].to_numpy()[big] == "M").mean() - 0.8) < 0.03
    assert abs(y[big].mean() - y.mean()) < 0.03


def test_bad_sampling_inputs_are_named():
    y, sf = _data(n=20)
    with pytest.raises(FairAuditError, match="'as_data' or 'balanced'"):
        synthetic_rows(y, sf, 10, "uniform")
    with pytest.raises(FairAuditError, match=r"attribute.*'age'"):
        synthetic_rows(y, sf, 10, "balanced", attributes=["age"])
    with pytest.raises(FairAuditError, match="20 labels but 19 rows"):
        synthetic_rows(y, sf.iloc[:19], 10)


def test_runner_samples_any_generator_as_data_or_balanced(tmp_path):
    logs = {s: tmp_path / f"{s}.json" for s in ("as_data", "balanced")}
    spec = tmp_path / "s.yaml"
    shutil.copy(PLUGINS, tmp_path / PLUGINS.name)  # local plugins load from the spec's folder tree only
    spec.write_text(textwrap.dedent(f"""\
        name: sampling
        seed: 1
        dataset:
          name: synthetic_cxr
          params: {{n_samples: 200, image_size: 32, seed: 1, male_fraction: 0.8, prevalence: 0.3}}
        attributes: [sex]
        model: {{name: logistic, params: {{C: 0.1}}}}
        generators:
          - {{name: cell_means, label: as_data, evaluation: [train_on_synthetic], n_synthetic: 200,
             params: {{log: "{logs['as_data']}"}}}}
          - {{name: cell_means, label: balanced, sampling: balanced, evaluation: [train_on_synthetic],
             n_synthetic: 200, params: {{log: "{logs['balanced']}"}}}}
        metrics: [group_metrics]
        statistics: {{n_boot: 20, n_permutations: 20, min_group_size: 5}}
        report: {{formats: []}}
        plugins: ["{PLUGINS.name}"]
        """))
    result = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    arms = {a.name: a for a in load_result(run_dirs(tmp_path / "out")[0]).arms}
    assert arms["balanced"].status == "ok" and arms["balanced"].params["sampling"] == "balanced"
    assert arms["as_data"].params["sampling"] == "as_data"
    asked = {s: json.loads(p.read_text()) for s, p in logs.items()}
    balanced = Counter(zip(asked["balanced"]["y"], asked["balanced"]["sex"], strict=True))
    assert set(balanced.values()) == {50} and len(balanced) == 4
    as_data = Counter(asked["as_data"]["sex"])
    assert as_data["M"] / 200 > 0.7  # the training split's 80% men
