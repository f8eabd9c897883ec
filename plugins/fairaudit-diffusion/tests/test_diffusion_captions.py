"""Captions from metadata and the prompt pairs of factor edits (no torch needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairaudit_diffusion.captions import (
    CaptionBuilder,
    canonical_field,
    field_values,
    flipped,
    metadata_frame,
    value_key,
)

ROW = {"label": 1, "device": 1, "view": 0, "sex": "F", "age_group": "50-65"}


def test_default_caption_describes_every_field_in_order() -> None:
    builder = CaptionBuilder(label_name="pleural effusion")
    assert builder.caption(ROW) == (
        "chest x-ray, with pleural effusion, with support devices, pa view, female patient, "
        "aged 50-65"
    )


def test_flipping_one_field_changes_only_its_phrase() -> None:
    builder = CaptionBuilder(label_name="pleural effusion")
    src, tgt = builder.caption(ROW), builder.caption({**ROW, "device": 0})
    assert src.replace("with support devices", "without support devices") == tgt


def test_missing_values_and_unknown_fields_are_handled() -> None:
    builder = CaptionBuilder(fields=("label", "device", "race"))
    assert builder.caption({"label": 0, "device": float("nan"), "race": "B"}) == (
        "chest x-ray, without disease, race B"
    )
    assert builder.caption({}) == "chest x-ray"
    assert builder.caption(ROW, keep={"device"}) == "chest x-ray, with support devices"


def test_named_placeholders_and_phrase_overrides() -> None:
    builder = CaptionBuilder(
        fields=("sex", "device", "label"),
        template="chest x-ray of a {sex} with {fields}",
        phrases={"sex": {"F": "woman", "M": "man"}, "device": {"1": "a pacemaker"}},
    )
    assert builder.caption({"sex": "M", "device": 1, "label": 0}) == (
        "chest x-ray of a man with a pacemaker, without disease"
    )
    # A placeholder whose phrase is empty leaves no dangling comma or space.
    assert builder.caption({"sex": "M"}) == "chest x-ray of a man with"
    with pytest.raises(ValueError, match="not caption fields"):
        CaptionBuilder(fields=("sex",), template="x-ray of {view}")


def test_dropout_is_seeded_and_produces_partial_and_empty_captions() -> None:
    builder = CaptionBuilder()
    meta = pd.DataFrame([ROW] * 400)
    a = builder.captions(meta, field_dropout=0.3, caption_dropout=0.1, rng=np.random.default_rng(1))
    b = builder.captions(meta, field_dropout=0.3, caption_dropout=0.1, rng=np.random.default_rng(1))
    assert a == b
    empty = sum(c == "" for c in a) / len(a)
    full = builder.caption(ROW)
    partial = [c for c in a if c and c != full]
    assert 0.05 < empty < 0.15
    assert len(partial) > 200  # with 5 fields at 0.3, ~83% of captions lose one or more
    assert all(c.startswith("chest x-ray") for c in a if c)
    assert builder.captions(meta.iloc[:3]) == [full] * 3


def test_value_keys_and_aliases() -> None:
    assert value_key(1) == value_key(1.0) == value_key(np.int64(1)) == value_key(True) == "1"
    assert value_key(float("nan")) is None and value_key(None) is None and value_key(" ") is None
    assert value_key(2.5) == "2.5"
    assert canonical_field("disease") == "label" and canonical_field("sex") == "sex"


def test_metadata_frame_joins_label_sensitive_and_extras() -> None:
    sens = pd.DataFrame({"sex": ["F", "M"]}, index=[7, 9])
    meta = metadata_frame(
        np.array([1, 0]), sens, {"device": np.array([0, 1]), "image_2d": np.zeros((2, 3))}
    )
    assert list(meta.columns) == ["sex", "device", "label"]
    assert meta["label"].tolist() == [1, 0] and meta["sex"].tolist() == ["F", "M"]
    assert field_values(meta, ["device", "sex", "view"]) == {
        "device": ["0", "1"],
        "sex": ["F", "M"],
    }
    assert list(metadata_frame(None, pd.DataFrame({"disease": [1]})).columns) == ["label"]


def test_flipped_needs_a_binary_field() -> None:
    assert flipped("0", ["0", "1"], "device") == "1"
    assert flipped("M", ["F", "M"], "sex") == "F"
    with pytest.raises(ValueError, match="'to'"):
        flipped("<50", ["50-65", "<50", ">65"], "age_group")
