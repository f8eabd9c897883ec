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
