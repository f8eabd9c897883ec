"""The tiny pipeline: built from configs, saved, loaded offline; missing folders fail clearly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fairaudit_diffusion.pipeline import ModelDirError, load_components, resolve_model_dir
from fairaudit_diffusion.tiny import ensure_tiny_pipeline, parse_tiny


def test_tiny_pipeline_is_saved_and_loads_offline(tiny_dir: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (tiny_dir / part).is_dir(), part
    assert list((tiny_dir / "unet").glob("*.safetensors"))
    c = load_components(tiny_dir, "cpu")
    assert c.source == tiny_dir
    assert c.native_resolution == 32 and c.vae_scale_factor == 4 and c.resolution_multiple == 8
    # Caption words are whole tokens of the locally built tokenizer.
    tokens = c.tokenizer.convert_ids_to_tokens(
        c.tokenizer("chest x-ray with support devices").input_ids
    )
    assert (
        tokens[1:3] == ["chest</w>", "x</w>"]
        and "support</w>" in tokens
        and "devices</w>" in tokens
    )
    emb = c.encode_text(["chest x-ray", "", "chest x-ray"])
    assert emb.shape == (3, c.tokenizer.model_max_length, 32)
    assert not emb[0].equal(emb[1]) and emb[0].equal(emb[2])


def test_tiny_vae_latents_have_roughly_unit_scale(tiny_dir: Path) -> None:
    import torch

    c = load_components(tiny_dir, "cpu")
    pixels = torch.nn.functional.interpolate(torch.rand(8, 1, 4, 4), size=(32, 32), mode="bilinear")
    z = c.encode(pixels.repeat(1, 3, 1, 1) * 2 - 1)
    assert z.shape == (8, 4, 8, 8)
    assert 0.5 < float(z.std()) < 2.0
    assert c.decode(z).shape == (8, 3, 32, 32)


def test_tiny_address_builds_once_in_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRAUDIT_DIFFUSION_CACHE", str(tmp_path))
    assert parse_tiny("tiny://16?seed=3") == (16, 3) and parse_tiny("/models/sd15") is None
    first = resolve_model_dir("tiny://16")
    assert first.parent.parent == tmp_path and (first / "model_index.json").is_file()
    stamp = (first / "model_index.json").stat().st_mtime_ns
    assert ensure_tiny_pipeline(16) == first
    assert (first / "model_index.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="tiny://32"):
        parse_tiny("tiny://big")


def test_missing_model_dir_fails_clearly_and_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="never downloads") as info:
        resolve_model_dir(tmp_path / "no-such-folder")
    assert "does not exist" in str(info.value) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(ModelDirError, match=r"no model_index\.json"):
        resolve_model_dir(tmp_path)
    with pytest.raises(ModelDirError, match=r"params\.model_dir"):
        resolve_model_dir("")
    # A hub id is not a local folder either: refused, not fetched.
    with pytest.raises(ModelDirError, match="never downloads"):
        load_components("runwayml/stable-diffusion-v1-5")


def test_broken_pipeline_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ModelDirError, match="could not load"):
        load_components(tmp_path)
