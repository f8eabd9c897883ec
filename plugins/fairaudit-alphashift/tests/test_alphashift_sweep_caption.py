"""The alpha-sweep caption says what the sweep shows: the latent moves along the direction, the
images show only what the decoder renders of it (measured by encoding the decoded extremes)."""

from __future__ import annotations

import numpy as np
import pytest
from fairaudit_alphashift.figures import RENDERED, round_trip, sweep_reading


class _Codes:
    """A stand-in for a fitted debiaser whose "images" carry their latent code in the first
    pixels (encoder = read them back), with a known direction."""

    def __init__(self, vector: np.ndarray):
        self.vector = vector

    def direction_for(self, attribute: str, level: str | None = None) -> np.ndarray:
        return self.vector

    def transform(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, : len(self.vector)].astype(np.float32)


@pytest.mark.parametrize("rendered", [0.0, 0.3, 1.0])
def test_round_trip_is_the_share_of_the_move_the_decoder_draws(rendered):
    rng = np.random.default_rng(0)
    d, n, alphas = 6, 5, [-2.0, -1.0, 0.0, 1.0, 2.0]
    vector = rng.normal(size=d)
    z = rng.normal(size=(n, d))
    decoded = np.zeros((n, len(alphas), 1, 4, 4))
    for j, a in enumerate(alphas):  # the decoder draws `rendered` of the move
        codes = z + rendered * a * vector
        decoded[:, j, 0] = np.pad(codes, ((0, 0), (0, 16 - d))).reshape(n, 4, 4)
    assert round_trip(_Codes(vector), decoded, "device", alphas) == pytest.approx(rendered, abs=1e-5)
    assert round_trip(_Codes(vector), decoded, "device", [1.0]) is None


def test_caption_says_the_images_are_not_evidence_when_the_decoder_draws_nothing():
    text = sweep_reading("device", 0.04)
    assert "moves the latent code along the 'device' direction" in text
    assert "recovers 4% of the move" in text
    assert "does not render what the direction encodes" in text and "not evidence of what the head sees" in text
    drawn = sweep_reading("device", RENDERED + 0.3)
    assert "does not render what the direction encodes" not in drawn and "80%" in drawn
    assert "if that feature does not change across a row" in drawn
    assert "recovers" not in sweep_reading("device", None)
    missed = sweep_reading("device", 0.57, ("1", 3.9))
    assert "does not render the 'device' feature" in missed and "3.9x" in missed
    assert "the decoder does not draw it, so these images are not evidence of what the head sees" in missed


class _Drops(_Codes):
    """Reconstructs every image as its body (0.5) alone: a bright device drawn only in the
    'device=1' images is lost."""

    image_size = 8

    def _prepare_images(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(images, np.float32)

    def transform(self, images: np.ndarray) -> np.ndarray:
        return np.zeros((len(images), len(self.vector)), np.float32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.full((len(codes), 1, 8, 8), 0.5, np.float32)


def test_a_feature_of_one_level_the_decoder_never_draws_is_found():
    from fairaudit_alphashift.figures import missed_feature

    rng = np.random.default_rng(1)
    images = 0.5 + 0.05 * rng.standard_normal((4, 1, 8, 8))
    images[2:, 0, 1:7, 3] = 1.0  # a tube in the device=1 images
    labels = ["device=0", "device=0", "device=1", "device=1"]
    found = missed_feature(_Drops(np.ones(3)), images, labels, "device", "0", ["1"])
    assert found is not None and found[0] == "1" and found[1] > 3
    images[2:, 0, 1:7, 3] = 0.5  # no device drawn in the inputs either: nothing is missed
    assert missed_feature(_Drops(np.ones(3)), images, labels, "device", "0", ["1"]) is None
