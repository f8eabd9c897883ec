"""``counterfactual_quality`` against ground truth from ``synthetic_cxr``'s oracle counterfactuals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from fairaudit.base import CounterfactualSets, MetricContext, StatsConfig
from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR, device_oracle
from fairaudit.builtin.metrics.counterfactual_quality import CounterfactualQuality, ssim_map
from fairaudit.results import MetricResult

TOL, DILATE = 0.01, 2
NAMES = ("cf_classifier_flip_rate", "cf_oracle_decision_kappa", "cf_artefact_flip_rate", "cf_edit_effectiveness",
         "cf_identity_l1", "cf_identity_ssim")


def mean_intensity(images: np.ndarray) -> np.ndarray:
    """A stand-in classifier: the mean grey level (the bright device pushes it up)."""
    return np.asarray(images, dtype=np.float64).reshape(len(images), -1).mean(1)


@pytest.fixture(scope="module")
def cxr() -> dict[str, Any]:
    ds = SyntheticCXR(n_samples=200, image_size=32, seed=3, images_per_patient=2).load()
    x = ds.images
    oracle = ds.counterfactual("device")
    # independent edited region: scipy's dilation with a (2 r + 1) square
    diff = np.abs(oracle.astype(np.float64) - x).max(1) > TOL
    region = ndimage.binary_dilation(diff, structure=np.ones((1, 2 * DILATE + 1, 2 * DILATE + 1), bool))
    return {
        "ds": ds,
        "x": x,
        "oracle": oracle,
        "region": region[:, None],
        "threshold": float(np.median(mean_intensity(x))),
    }


def _ctx(cxr: dict[str, Any], generated: dict[str, np.ndarray], **kw: Any) -> MetricContext:
    ds = cxr["ds"]
    cf = kw.pop("cf", {"oracle:device": cxr["oracle"]})
    return MetricContext(
        y_true=ds.y,
        sensitive=ds.sensitive,
        patient_ids=ds.patient_ids,
        images=cxr["x"],
        counterfactuals=CounterfactualSets.from_labelled({**cf, **generated}),
        predict_fn=kw.pop("predict_fn", mean_intensity),
        artefact_oracle=kw.pop("artefact_oracle", device_oracle),
        threshold=cxr["threshold"],
        attributes=kw.pop("attributes", ["sex"]),
        stats=kw.pop("stats", StatsConfig(n_boot=200, min_group_size=20)),
        **kw,
    )


def _by(results: list[MetricResult], attribute: str | None = "sex") -> dict[str, MetricResult]:
    return {r.metric: r for r in results if r.attribute == attribute}


def _per_pair_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = np.broadcast_to(mask, values.shape).reshape(len(values), -1)
    return (values.reshape(len(values), -1) * m).sum(1) / m.sum(1)


def _flip(a: np.ndarray, b: np.ndarray, thr: float) -> np.ndarray:
    return (mean_intensity(a) >= thr) != (mean_intensity(b) >= thr)


def _reference_masked_ssim(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked Gaussian SSIM map from its definition, with scipy's 2-D correlation (mirror borders)."""
    t = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    kernel = np.outer(t, t) / np.outer(t, t).sum()
    x, y = x.astype(np.float64), y.astype(np.float64)
    m = np.broadcast_to(mask, x.shape).astype(np.float64)

    def f(a: np.ndarray) -> np.ndarray:
        return np.stack([ndimage.correlate(img, kernel, mode="reflect") for img in a.reshape(-1, *a.shape[-2:])])

    w = f(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = f(m * x) / w, f(m * y) / w
        vx, vy, vxy = f(m * x * x) / w - mx**2, f(m * y * y) / w - my**2, f(m * x * y) / w - mx * my
        c1, c2 = 0.01**2, 0.03**2
        out = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return out.reshape(x.shape)


# ---------------------------------------------------------------- (a) oracle as generator
def test_oracle_as_generator_is_perfect(cxr) -> None:
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": cxr["oracle"]})))
    assert set(res) == set(NAMES) and all(r.status == "ok" for r in res.values())
    assert res["cf_identity_l1"].value == 0.0
    assert res["cf_identity_ssim"].value == pytest.approx(1.0, abs=1e-12)
    assert res["cf_artefact_flip_rate"].value == 1.0
    expected = _flip(cxr["x"], cxr["oracle"], cxr["threshold"])
    assert 0.05 < expected.mean() < 0.95  # a non-trivial reference
    flip = res["cf_classifier_flip_rate"]
    assert flip.value == pytest.approx(expected.mean())
    assert flip.details["oracle_flip_rate"]["value"] == pytest.approx(expected.mean())
    assert flip.details["difference_to_oracle"]["value"] == 0.0
    sex = cxr["ds"].sensitive["sex"].to_numpy()
    for gv in flip.per_group:
        assert gv.value == pytest.approx(expected[sex == gv.group].mean())
        assert gv.n == (sex == gv.group).sum() and gv.n_pos == expected[sex == gv.group].sum()
    assert flip.ci_low < flip.value < flip.ci_high
    ident = res["cf_identity_l1"].details
    assert ident["oracle_agreement_in_region_l1"]["value"] == 0.0
    assert ident["edited_region"]["mean_fraction"] == pytest.approx(cxr["region"].mean())
    assert flip.higher_is_better is None and res["cf_artefact_flip_rate"].higher_is_better is True
    assert res["cf_artefact_flip_rate"].details["artefact_edit"] is True
    assert res["cf_edit_effectiveness"].value == 1.0 and res["cf_oracle_decision_kappa"].value == 1.0
    assert res["cf_oracle_decision_kappa"].details["agreement"]["value"] == 1.0
    assert res["cf_identity_l1"].higher_is_better is False and res["cf_identity_ssim"].higher_is_better is True


# ---------------------------------------------------------------- (b) unedited originals
def test_unedited_originals_flip_nothing(cxr) -> None:
    x, oracle, region = cxr["x"], cxr["oracle"], cxr["region"]
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": x.copy()})))
    assert res["cf_artefact_flip_rate"].value == 0.0
    assert res["cf_classifier_flip_rate"].value == 0.0
    assert res["cf_identity_l1"].value == 0.0
    assert res["cf_identity_ssim"].value == pytest.approx(1.0, abs=1e-12)
    # inside the region the generator failed to edit: its L1 to the oracle is the oracle's edit size
    expected = _per_pair_mean(np.abs(oracle.astype(np.float64) - x), region).mean()
    agreement = res["cf_identity_ssim"].details["oracle_agreement_in_region_l1"]
    assert agreement["value"] == pytest.approx(expected, rel=1e-9) and expected > 0.05
    gap = res["cf_classifier_flip_rate"].details["difference_to_oracle"]["value"]
    assert gap == pytest.approx(-_flip(x, oracle, cxr["threshold"]).mean())
    # ... but it is not a perfect counterfactual: nothing of the edit was made, no decision
    # flips where the oracle's do, and the artefact (which a device edit should change) stays
    assert res["cf_edit_effectiveness"].value == 0.0
    assert res["cf_oracle_decision_kappa"].value == pytest.approx(0.0, abs=1e-12)
    assert res["cf_artefact_flip_rate"].higher_is_better is True


def test_identity_generator_scores_worst_on_effectiveness(cxr) -> None:
    from fairaudit.testing.shortcut_ladder import imperfect_counterfactuals

    x, oracle = cxr["x"], cxr["oracle"]
    generators = {
        "oracle": oracle,
        "noisy": imperfect_counterfactuals(x, oracle, noise_sd=0.03, seed=1),
        "faded": imperfect_counterfactuals(x, oracle, fade=(0.5, 0.5)),
        "half failed": imperfect_counterfactuals(x, oracle, fail_rate=0.5, seed=2),
        "identity": x.copy(),
    }
    eff = {k: _by(CounterfactualQuality().compute(_ctx(cxr, {"device": g})))["cf_edit_effectiveness"].value
           for k, g in generators.items()}
    assert eff["identity"] == 0.0 and min(eff, key=eff.get) == "identity"
    assert eff["oracle"] == 1.0 and eff["faded"] == pytest.approx(0.5, abs=0.02)
    assert 0.3 < eff["half failed"] < 0.7 and 0 < eff["noisy"] < 1


def test_kappa_compares_pairs_not_rates(cxr) -> None:
    """A generator flipping as many decisions as the oracle, but partly on other images: the
    flip rates agree exactly, the pairwise kappa (checked against scikit-learn) does not."""
    from sklearn.metrics import cohen_kappa_score

    x, oracle, thr = cxr["x"], cxr["oracle"], cxr["threshold"]
    oracle_flip = _flip(x, oracle, thr)
    below = mean_intensity(x) < thr
    undo = np.flatnonzero(oracle_flip)[:10]  # oracle flips these; the generator does not
    fake = np.flatnonzero(~oracle_flip & below)[:10]  # and flips these instead (brighter image)
    gen = oracle.copy()
    gen[undo] = x[undo]
    gen[fake] = np.clip(x[fake] + 0.3, 0, 1)
    gen_flip = _flip(x, gen, thr)
    assert gen_flip.mean() == oracle_flip.mean() and (gen_flip != oracle_flip).sum() == 20
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": gen})))
    assert res["cf_classifier_flip_rate"].details["difference_to_oracle"]["value"] == 0.0
    kappa = res["cf_oracle_decision_kappa"]
    assert kappa.value == pytest.approx(cohen_kappa_score(gen_flip, oracle_flip))
    assert kappa.value < 0.9 and kappa.ci_low < kappa.value < kappa.ci_high
    assert kappa.details["agreement"]["value"] == pytest.approx(1 - 20 / len(x))
    sex = cxr["ds"].sensitive["sex"].to_numpy()
    for gv in kappa.per_group:
        assert gv.value == pytest.approx(cohen_kappa_score(gen_flip[sex == gv.group], oracle_flip[sex == gv.group]))


# ---------------------------------------------------------------- (c) noise outside the region
@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_noise_outside_region_costs_exactly_its_size(cxr, window: str) -> None:
    x, oracle, region = cxr["x"], cxr["oracle"], cxr["region"]
    rng = np.random.default_rng(0)
    noisy = {}
    for sd in (0.02, 0.1):
        noise = rng.normal(0.0, sd, x.shape) * ~region
        noisy[sd] = np.clip(oracle + noise, 0.0, 1.0).astype(np.float32)
    metric = CounterfactualQuality(ssim_window=window)  # type: ignore[arg-type]
    low, high = (_by(metric.compute(_ctx(cxr, {"device": noisy[sd]}))) for sd in (0.02, 0.1))
    for sd, res in ((0.02, low), (0.1, high)):
        expected_l1 = _per_pair_mean(np.abs(noisy[sd].astype(np.float64) - x), ~region).mean()
        assert res["cf_identity_l1"].value == pytest.approx(expected_l1, rel=1e-9)
        assert res["cf_identity_ssim"].details["oracle_agreement_in_region_l1"]["value"] == 0.0
        r = res["cf_identity_ssim"]
        assert r.ci_low < r.value < r.ci_high
    assert 0 < low["cf_identity_l1"].value < high["cf_identity_l1"].value
    assert high["cf_identity_ssim"].value < low["cf_identity_ssim"].value < 1.0
    if window == "gaussian":
        ref = _reference_masked_ssim(x, noisy[0.1], ~region)
        expected = _per_pair_mean(np.where(region, 0.0, ref), ~region).mean()
        assert high["cf_identity_ssim"].value == pytest.approx(expected, rel=1e-9)


def test_edits_inside_the_region_do_not_touch_identity(cxr) -> None:
    x, oracle, region = cxr["x"], cxr["oracle"], cxr["region"]
    garbage = np.random.default_rng(1).random(x.shape).astype(np.float32)
    gen = np.where(region, garbage, oracle)
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": gen})))
    assert res["cf_identity_l1"].value == 0.0
    assert res["cf_identity_ssim"].value == pytest.approx(1.0, abs=1e-12)
    expected = _per_pair_mean(np.abs(gen.astype(np.float64) - oracle), region).mean()
    assert res["cf_identity_l1"].details["oracle_agreement_in_region_l1"]["value"] == pytest.approx(expected)


# ---------------------------------------------------------------- (d) SSIM itself
def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    x = rng.random((40, 36))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    uniform = metrics.structural_similarity(x, y, data_range=1.0)
    gauss = metrics.structural_similarity(
        x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim_map(x, y, window="uniform")[3:-3, 3:-3].mean() == pytest.approx(uniform, rel=1e-10)
    assert ssim_map(x, y, window="gaussian")[5:-5, 5:-5].mean() == pytest.approx(gauss, rel=1e-10)


def test_ssim_matches_filter_reference_and_known_properties() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((2, 1, 24, 24)) * 0.8
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    # unmasked: the definition with scipy's separable filters (what skimage computes)
    c1, c2 = 0.01**2, 0.03**2
    f = lambda a: ndimage.uniform_filter(a, size=(1, 1, 7, 7), mode="reflect")  # noqa: E731
    mx, my = f(x), f(y)
    norm = 49 / 48
    vx, vy, vxy = norm * (f(x * x) - mx**2), norm * (f(y * y) - my**2), norm * (f(x * y) - mx * my)
    ref = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    np.testing.assert_allclose(ssim_map(x, y, window="uniform"), ref, rtol=1e-10, atol=1e-12)
    assert np.all(ssim_map(x, x) == 1.0)
    np.testing.assert_allclose(ssim_map(x, y), ssim_map(y, x), rtol=1e-12)
    assert np.all(ssim_map(x, y) <= 1.0 + 1e-12)
    # a constant shift keeps structure (term = 1) and costs exactly the luminance term
    shift = 0.1
    mu = ndimage.gaussian_filter(x, sigma=(0, 0, 1.5, 1.5), truncate=3.5, mode="reflect")
    lum = (2 * mu * (mu + shift) + c1) / (mu**2 + (mu + shift) ** 2 + c1)
    np.testing.assert_allclose(ssim_map(x, x + shift), lum, rtol=1e-9)
    # a mask confines the statistics: changes where mask is False never matter
    mask = np.ones((24, 24), bool)
    mask[8:16, 8:16] = False
    z = np.where(mask, x, 1.0 - x)
    np.testing.assert_array_equal(ssim_map(x, z, mask)[..., mask], 1.0)


# ---------------------------------------------------------------- statuses and options
def test_without_oracle_the_whole_image_is_compared(cxr) -> None:
    x, oracle = cxr["x"], cxr["oracle"]
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": oracle}, cf={})))
    l1 = res["cf_identity_l1"]
    assert l1.value == pytest.approx(np.abs(oracle.astype(np.float64) - x).reshape(len(x), -1).mean(1).mean())
    assert any("whole image" in n for n in l1.notes) and l1.details["oracle"] is None
    assert res["cf_identity_ssim"].value < 1.0
    flip = res["cf_classifier_flip_rate"]
    assert flip.status == "ok" and flip.details["oracle_flip_rate"]["value"] is None


def test_not_applicable_and_too_small(cxr) -> None:
    assert CounterfactualQuality().compute(_ctx(cxr, {})) == []  # only oracle sets: not this metric's arm
    res = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": cxr["oracle"]}, artefact_oracle=None)))
    assert res["cf_artefact_flip_rate"].status == "not_applicable" and res["cf_artefact_flip_rate"].value is None
    assert res["cf_identity_l1"].status == "ok"
    small = _by(CounterfactualQuality().compute(
        _ctx(cxr, {"device": cxr["oracle"]}, stats=StatsConfig(n_boot=20, min_group_size=500))
    ))
    assert all(r.status == "too_small" and r.value is None for r in small.values())
    assert all(gv.too_small for gv in small["cf_identity_l1"].per_group)
    bad = CounterfactualQuality().compute(_ctx(cxr, {"device": cxr["x"][:10]}))
    assert all(r.status == "not_applicable" for r in bad) and "skipped" in bad[0].notes[0]


def test_factor_selection_attributes_and_determinism(cxr) -> None:
    sets = {"device": cxr["oracle"], "disease": cxr["ds"].counterfactual("disease")}
    cf = {"oracle:device": cxr["oracle"], "oracle:disease": sets["disease"]}
    ctx = _ctx(cxr, sets, cf=cf, attributes=["sex", "age_group"], intersections=[["sex", "age_group"]])
    res = CounterfactualQuality(factors=["disease"]).compute(ctx)
    assert {r.details["factor"] for r in res} == {"disease"}
    assert {r.attribute for r in res} == {"sex", "age_group", "sex&age_group"} and len(res) == 18
    assert all(r.details["oracle"] == "oracle:disease" for r in res)
    assert [r.value for r in res] == [r.value for r in CounterfactualQuality(factors=["disease"]).compute(ctx)]
    both = CounterfactualQuality().compute(_ctx(cxr, sets, cf=cf, attributes=[]))
    assert len(both) == 12 and {r.attribute for r in both} == {None}
    disease = {r.metric: r for r in both if r.details["factor"] == "disease"}
    assert disease["cf_artefact_flip_rate"].value == 0.0  # flipping the disease leaves the device alone
    # ... which is what it must do: for a disease edit the artefact flip rate is lower-is-better
    assert disease["cf_artefact_flip_rate"].higher_is_better is False
    assert disease["cf_artefact_flip_rate"].details["artefact_edit"] is False
    assert any("must not change" in n for n in disease["cf_artefact_flip_rate"].notes)


def test_artefact_direction_without_oracle_comes_from_the_parameter(cxr) -> None:
    unknown = _by(CounterfactualQuality().compute(_ctx(cxr, {"device": cxr["oracle"]}, cf={})))
    assert unknown["cf_artefact_flip_rate"].higher_is_better is None
    assert unknown["cf_edit_effectiveness"].status == "not_applicable"
    assert unknown["cf_oracle_decision_kappa"].status == "not_applicable"
    declared = CounterfactualQuality(artefact_factors=["device"]).compute(_ctx(cxr, {"device": cxr["oracle"]}, cf={}))
    assert _by(declared)["cf_artefact_flip_rate"].higher_is_better is True


def test_invalid_parameters_raise(cxr) -> None:
    with pytest.raises(ValueError, match="dilate"):
        CounterfactualQuality(dilate=-1).compute(_ctx(cxr, {"device": cxr["oracle"]}))


# ---------------------------------------------------------------- (e) conformance and registration
def test_conformance_kit_and_registration() -> None:
    from fairaudit.builtin.metrics import fairaudit_register_metrics
    from fairaudit.registry import Registry
    from fairaudit.testing import checks_for

    for check in checks_for(CounterfactualQuality):
        check(CounterfactualQuality)
    reg = Registry("metrics")
    fairaudit_register_metrics(reg)
    assert reg.get("counterfactual_quality") is CounterfactualQuality


def test_results_round_trip_as_json(cxr) -> None:
    for r in CounterfactualQuality().compute(_ctx(cxr, {"device": cxr["oracle"]})):
        assert MetricResult.model_validate_json(r.model_dump_json()) == r
    frame = pd.DataFrame([gv.model_dump() for gv in r.per_group])
    assert set(frame["group"]) == {"F", "M"}


def test_emits_exactly_what_it_declares(cxr) -> None:
    metric = CounterfactualQuality()
    declared = {o.name: o for o in metric.outputs()}
    emitted = metric.compute(_ctx(cxr, {"device": cxr["oracle"]}))
    assert {r.metric for r in emitted} == set(declared) == set(NAMES)
    for r in emitted:
        d = declared[r.metric]
        assert (r.role, r.headline, r.derived_from, r.variant) == (d.role, d.headline, d.derived_from, d.variant)
        if d.higher_is_better is not None:  # the artefact flip rate's direction is per factor
            assert r.higher_is_better is d.higher_is_better
    assert declared["cf_artefact_flip_rate"].higher_is_better is None
