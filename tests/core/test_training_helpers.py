"""fairaudit.training helpers: mixed precision switch, device resolution, checkpoints."""

from __future__ import annotations

import pytest
import torch

from fairaudit.errors import CheckpointError, DeviceError
from fairaudit.training import MixedPrecision, load_checkpoint, resolve_device, save_checkpoint


def test_mixed_precision_is_a_no_op_on_cpu_and_still_steps():
    amp = MixedPrecision("cpu", enabled=True)
    assert not amp.enabled and amp.scaler is None
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.5)
    with amp.autocast():
        loss = (w * torch.arange(3.0)).sum()
    assert loss.dtype == torch.float32
    amp.step(loss, opt)
    assert torch.allclose(w.detach(), torch.tensor([1.0, 0.5, 0.0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_autocasts_on_cuda():
    amp = MixedPrecision("cuda", enabled=True)
    lin = torch.nn.Linear(4, 1).cuda()
    with amp.autocast():
        out = lin(torch.ones(2, 4, device="cuda"))
    assert out.dtype in (torch.float16, torch.bfloat16)


def test_missing_cuda_fails_clearly_or_falls_back(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda", on_missing_cuda="fail")
    with pytest.warns(RuntimeWarning, match="using CPU"):
        assert resolve_device("cuda:1") == "cpu"
    assert resolve_device("auto") == "cpu"


def test_checkpoint_round_trip_and_corruption(tmp_path):
    path = save_checkpoint(tmp_path / "w.safetensors", {"a": torch.arange(4.0)})
    assert torch.equal(load_checkpoint(path)["a"], torch.arange(4.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as a killed copy would leave it
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
