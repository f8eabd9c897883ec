"""SCLS-like score on toy images: ~1 for an artefact reader, ~0 for a classifier ignoring it;
decision flips per *confirmed* artefact edit, whatever the other factors' flips do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.base import CounterfactualSets, MetricContext, StatsConfig
from fairaudit.builtin.metrics.scls import SCLS

SIZE = 16


def _render(disease: np.ndarray, device: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey background; disease = bright central blob; artefact = bright square in a corner."""
    n = len(disease)
    img = 0.2 + rng.normal(0, 0.03, (n, 1, SIZE, SIZE))
    img[disease == 1, :, 6:10, 6:10] += 0.6
    img[device == 1, :, 0:3, 0:3] += 0.7
    return np.clip(img, 0, 1).astype(np.float32)


def oracle(images: np.ndarray) -> np.ndarray:
    return (np.asarray(images)[:, 0, 0:3, 0:3].mean((1, 2)) > 0.5).astype(int)


def reads_artefact(images: np.ndarray) -> np.ndarray:
    return np.asarray(images)[:, 0, 0:3, 0:3].mean((1, 2))


def reads_disease(images: np.ndarray) -> np.ndarray:
    return np.asarray(images)[:, 0, 6:10, 6:10].mean((1, 2))


def mixed(images: np.ndarray) -> np.ndarray:
    """Reads the artefact where the flag pixel (15, 15) is set, the disease otherwise."""
    return np.where(
        np.asarray(images)[:, 0, 15, 15] > 0.5, reads_artefact(images), reads_disease(images)
    )


@pytest.fixture(scope="module")
def toy() -> dict[str, object]:
    rng = np.random.default_rng(0)
    n = 240
    disease = rng.integers(0, 2, n)
    device = np.where(rng.random(n) < 0.8, disease, 1 - disease)  # spurious correlation
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    return {
        "disease": disease,
        "sex": sex,
        "images": _render(disease, device, rng),
        "cf": {
            "oracle:device": _render(disease, 1 - device, rng),
            "oracle:disease": _render(1 - disease, device, rng),
        },
    }


def _ctx(toy, predict_fn, **kw) -> MetricContext:
    return MetricContext(
        y_true=toy["disease"],
        sensitive=pd.DataFrame({"sex": toy["sex"]}),
        patient_ids=np.arange(len(toy["disease"])),
        images=toy["images"],
        counterfactuals=CounterfactualSets.from_labelled(kw.pop("cf", toy["cf"])),
        predict_fn=predict_fn,
        artefact_oracle=oracle,
        attributes=["sex"],
        stats=StatsConfig(n_boot=200),
        **kw,
    )


def test_scls_one_for_artefact_reader_zero_for_disease_reader(toy) -> None:
    latch = SCLS().compute(_ctx(toy, reads_artefact))[0]
    clean = SCLS().compute(_ctx(toy, reads_disease))[0]
    assert latch.value == pytest.approx(1.0) and clean.value == pytest.approx(0.0)
    for r in (latch, clean):
        assert r.metric == "scls" and r.status == "ok" and r.attribute == "sex"
        assert r.details["definition"].startswith("SCLS-like v2")
        assert r.details["n_flipped"] == 240 and r.details["n_confirmed"] == 240
        assert {gv.group for gv in r.per_group} == {"F", "M"}
        assert any("SCLS-like" in n for n in r.notes)
    assert latch.details["factors"]["oracle:device"]["n_flipped"] == 240
    assert latch.details["factors"]["oracle:disease"]["n_flipped"] == 0
    assert set(latch.details["by_label_artefact"]) == {
        "y=0,artefact=0",
        "y=0,artefact=1",
        "y=1,artefact=0",
        "y=1,artefact=1",
    }


def test_scls_partial_latching_with_ci(toy) -> None:
    flag = np.random.default_rng(1).random(len(toy["disease"])) < 0.5  # which cue it reads
    data, cf = _flagged(toy, flag)
    r = SCLS().compute(_ctx(data, mixed, cf=cf))[0]
    assert r.value == pytest.approx(flag.mean(), abs=1e-9)  # half the device edits flip it
    assert r.ci_low < r.value < r.ci_high


def test_scls_factor_selection_and_too_small(toy) -> None:
    only_disease = SCLS(factors=["disease"]).compute(_ctx(toy, reads_disease))[0]
    assert only_disease.status == "too_small" and only_disease.value is None
    assert only_disease.details["n_confirmed"] == 0 and only_disease.details["n_flipped"] == 240
    assert any("min_edits=5" in n for n in only_disease.notes)


def _flagged(toy, flag: np.ndarray) -> tuple[dict, dict]:
    """Copies of the toy images and counterfactuals with the mixed classifier's flag pixel set
    where ``flag`` (there it reads the artefact, elsewhere the disease)."""
    images = toy["images"].copy()
    cf = {k: v.copy() for k, v in toy["cf"].items()}
    for arr in (images, *cf.values()):
        arr[:, 0, 15, 15] = np.where(flag, 1.0, 0.0)
    return {**toy, "images": images}, cf


def test_scls_is_the_latching_rate_not_one_whenever_anything_flips(toy) -> None:
    """The first definition, P(artefact flipped | decision flipped), was 1.0 on a device-only
    set as soon as one decision flipped; v2 is the share of device edits that flip it."""
    flag = np.zeros(len(toy["disease"]), bool)
    flag[:16] = True  # the classifier latches onto the device on 16 of 240 images
    data, cf = _flagged(toy, flag)
    r = SCLS().compute(_ctx(data, mixed, cf={"oracle:device": cf["oracle:device"]}))[0]
    assert r.value == pytest.approx(16 / 240) and r.details["n_latched"] == 16
    assert r.details["n_confirmed"] == 240 and r.details["flip_rate_unconfirmed"] is None


def test_scls_ignores_how_often_other_factors_flip_the_decision(toy) -> None:
    flag = np.random.default_rng(3).random(len(toy["disease"])) < 0.3
    data, cf = _flagged(toy, flag)
    device_only = SCLS().compute(_ctx(data, mixed, cf={"oracle:device": cf["oracle:device"]}))[0]
    pooled = SCLS().compute(_ctx(data, mixed, cf=cf))[0]  # + disease edits flipping 70 % of decisions
    assert device_only.value == pooled.value == pytest.approx(flag.mean())
    assert pooled.details["factors"]["oracle:disease"]["n_confirmed"] == 0
    assert pooled.details["flip_rate_unconfirmed"] == pytest.approx(1 - flag.mean())


def test_scls_drops_failed_edits_instead_of_diluting(toy) -> None:
    fail = np.random.default_rng(4).random(len(toy["disease"])) < 0.5
    generated = np.where(fail[:, None, None, None], toy["images"], toy["cf"]["oracle:device"])
    r = SCLS().compute(_ctx(toy, reads_artefact, cf={**toy["cf"], "device": generated}))[0]
    assert set(r.details["factors"]) == {"device"}  # the generator's set; oracle sets are references
    assert r.value == pytest.approx(1.0) and r.details["n_confirmed"] == int((~fail).sum())
    assert r.details["flip_rate_unconfirmed"] == 0.0


def test_scls_old_parameter_name_fails_clearly() -> None:
    from fairaudit.params import validate_params

    with pytest.raises(ValueError, match="'min_flipped' was renamed min_edits"):
        SCLS(min_flipped=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="'min_flipped' was renamed min_edits"):
        validate_params(SCLS, {"min_flipped": 1})
    assert validate_params(SCLS, {"min_edits": 2}) == {"min_edits": 2}
    with pytest.raises(ValueError, match="extra"):
        validate_params(SCLS, {"min_edit": 2})


def test_scls_needs_oracle_and_matching_lengths(toy) -> None:
    ctx = _ctx(toy, reads_disease)
    ctx.artefact_oracle = None
    assert SCLS().compute(ctx)[0].status == "not_applicable"
    bad = _ctx(toy, reads_disease, cf={"x": toy["images"][:10]})
    res = SCLS().compute(bad)[0]
    assert res.status == "not_applicable"


def test_scls_nan_scores_raise(toy) -> None:
    from fairaudit.errors import DataError

    with pytest.raises(DataError, match="NaN"):
        SCLS().compute(_ctx(toy, lambda imgs: np.full(len(imgs), np.nan)))


def test_scls_without_attributes_gives_one_overall_result(toy) -> None:
    ctx = _ctx(toy, reads_artefact)
    ctx.attributes = []
    res = SCLS().compute(ctx)
    assert len(res) == 1 and res[0].attribute is None and res[0].value == pytest.approx(1.0)
