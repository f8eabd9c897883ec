"""Slow end-to-end checks on ``synthetic_cxr`` (CPU, 32 px, tiny networks): what holds.

* conditioning: after training, frozen classifiers fitted on *real* images separate the
  generated images by the label and by the group they were conditioned on;
* critic objectives: at equal seeds CAF-GAN ends with a smaller soft TPR gap and clinical
  loss on its samples than plain WGAN-GP (lambda = 0): the terms reach the generator
  (``test_cafgan_losses`` checks the gradient flow itself);
* plausibility judged independently: lung masks of an independently trained segmenter
  (``fairaudit_cafgan.judges``, not the U-Net the generator was trained against).

The pre-registered train-on-synthetic criterion (lower downstream EOD at 0.5 than plain
WGAN-GP, AUC within 0.03) failed; it is measured over GAN x downstream seeds and a lambda
sweep by ``benchmarks/bench_cafgan.py``, whose recorded results ``test_cafgan_benchmark``
checks.  The arms here are the benchmark's GAN seed 0 (same data, sizes and steps), trained
once per module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from cafgan_phantoms import synthetic_cxr_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not synthetic_cxr_available(), reason="synthetic_cxr not available"),
]

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_cafgan.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cafgan_bench_config", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench(torch_single_thread) -> ModuleType:
    return _bench()


@pytest.fixture(scope="module")
def splits(bench):
    """The benchmark's samples: train (seed 0), test (seed 1), judge (seed 3)."""
    cfg = {**bench.FULL}
    return bench.load_splits(cfg)


def _fit(bench, lambda_fair: float, train):
    from fairaudit_cafgan import CAFGAN

    return CAFGAN(**bench.ARM, n_steps=bench.FULL["n_steps"], random_state=0, lambda_fair=lambda_fair,
                  lambda_clinic=bench.LAMBDA_CLINIC if lambda_fair > 0 else 0.0).fit(train)


@pytest.fixture(scope="module")
def wgan_gp(bench, splits):
    return _fit(bench, 0.0, splits["train"])


@pytest.fixture(scope="module")
def cafgan(bench, splits):
    return _fit(bench, bench.PREREGISTERED_LAMBDA, splits["train"])


@pytest.fixture(scope="module")
def judged(bench, splits, wgan_gp, cafgan):
    """Independent judges' scores of both arms' samples (balanced conditions, as the benchmark)."""
    from fairaudit_cafgan.judges import Judges

    judges = Judges(segmenter_epochs=bench.FULL["judge_epochs"]).fit(splits["judge"])
    y, sf = bench.balanced_conditions(bench.FULL["n_judged"])
    scores = {name: judges.score(gen.generate(y, sf), y, sf) for name, gen in
              (("wgan_gp", wgan_gp), ("cafgan", cafgan))}
    print(f"\nindependent judges: {scores}")
    return scores


def test_conditioning_on_label_and_group(judged):
    """Readers trained on real images (independent of both GANs) recover the label each
    generated image was conditioned on, and plain WGAN-GP's group.  Measured at GAN seed 0:
    label AUC 0.794 (plain) / 1.000 (CAF-GAN); group AUC 1.000 / 0.625 (the fairness term
    blurs the group cue; seeds 1, 2 in the README)."""
    assert judged["wgan_gp"]["reader_label_auc"] > 0.7
    assert judged["cafgan"]["reader_label_auc"] > 0.9
    assert judged["wgan_gp"]["reader_group_auc"] > 0.9
    assert judged["cafgan"]["reader_group_auc"] > 0.55


def test_cafgan_lowers_what_its_critics_measure(wgan_gp, cafgan):
    """At equal seeds, the generator trained with both terms ends with a smaller soft TPR
    gap of its frozen diagnostic CNN and a smaller clinical loss on generated images
    (fixed-noise monitor) than plain WGAN-GP: the terms reach and steer the generator.
    Measured at GAN seed 0: gap 0.019 vs 0.052, clinical 0.050 vs 0.608 (the benchmark
    records seeds 1 and 2)."""
    caf, plain = cafgan.history_[-1], wgan_gp.history_[-1]
    print(
        f"\nmonitor: fairness {caf['monitor_fairness']:.3f} vs {plain['monitor_fairness']:.3f}, "
        f"clinical {caf['monitor_clinical']:.3f} vs {plain['monitor_clinical']:.3f}"
    )
    assert caf["monitor_fairness"] < plain["monitor_fairness"]
    assert caf["monitor_clinical"] < plain["monitor_clinical"]


def test_own_unet_passes_cafgan_masks_but_the_independent_segmenter_does_not(wgan_gp, cafgan, judged):
    """Plausibility is circular when judged by the U-Net the generator was trained against:
    CAF-GAN's own U-Net finds almost no implausible lung mask in its samples, while an
    independently trained segmenter finds almost all of them implausible, more than plain
    WGAN-GP's.  Measured at GAN seed 0: own U-Net 0.6 % (plain 0.8 %); independent
    segmenter 99.0 % (plain 16.3 %)."""
    own = cafgan.generated_plausibility_["implausible_rate"]
    independent = judged["cafgan"]["implausible_rate"]
    plain = judged["wgan_gp"]["implausible_rate"]
    print(f"\nimplausible masks, cafgan: own U-Net {own:.4f}, independent {independent:.4f} "
          f"(plain WGAN-GP independent {plain:.4f})")
    assert own < 0.02
    assert independent > 0.9
    assert independent > plain
