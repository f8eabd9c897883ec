"""``torch_checkpoint``: a network the user brings, audited through a whole ``fairaudit run``.

Ground truth: the run's scores (its predictions file) equal the network applied by hand to the
same images (channels repeated, ImageNet normalisation, sigmoid of the positive logit); probes
read the network's own features; fine-tuning the head changes the head only; pickles are refused.
"""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR  # noqa: E402
from fairaudit.builtin.models._architectures import build_architecture  # noqa: E402
from fairaudit.builtin.models.torch_checkpoint import TorchCheckpoint  # noqa: E402
from fairaudit.errors import CheckpointError, DataError  # noqa: E402
from fairaudit.testing.data import tiny_images  # noqa: E402
from fairaudit.testing.runs import cli, load_result, only_run_dir  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
CXR = {"n_samples": 80, "image_size": 32, "seed": 3}


def _densenet(images: np.ndarray, seed: int = 0) -> torch.nn.Module:
    """A densenet121 whose scores on ``images`` lie on both sides of 0.5 (bias at their median logit)."""
    torch.manual_seed(seed)
    net = build_architecture("densenet121", 1).eval()
    with torch.no_grad():
        net.classifier.bias.zero_()
        x = torch.as_tensor(images, dtype=torch.float32).repeat(1, 3, 1, 1)
        net.classifier.bias.fill_(-float(net((x - MEAN) / STD).median()))
    return net


def _by_hand(net: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(images, dtype=torch.float32).repeat(1, 3, 1, 1)
    with torch.no_grad():
        return torch.sigmoid(net((x - MEAN) / STD)[:, 0]).double().numpy()


def _run(tmp_path: Path, dataset: str, model: str, metrics: str = "[group_metrics]", code: int = 0):
    spec = tmp_path / "audit.yaml"
    spec.write_text(textwrap.dedent(f"""\
        name: checkpoint
        dataset: {dataset}
        attributes: [sex]
        model: {model}
        metrics: {metrics}
        statistics: {{n_boot: 20, n_permutations: 20, min_group_size: 5}}
        report: {{formats: [html]}}
        """))
    out = cli("run", str(spec), "-o", str(tmp_path / "out"), "-q", catch_exceptions=True)
    assert out.exit_code == code, out.output
    return out if code else only_run_dir(tmp_path / "out")


def _scores(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "arms" / "baseline.predictions.parquet")


@pytest.mark.slow  # ~10 s: densenet121 features of every image, then the probe family
def test_densenet121_safetensors_on_synthetic_cxr_with_probes_on_its_features(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    images = SyntheticCXR(**CXR).load().images
    net = _densenet(images)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "cxr.safetensors")
    run_dir = _run(tmp_path, f"{{name: synthetic_cxr, params: {CXR}}}",
                   "{name: torch_checkpoint, params: {arch: densenet121, weights: cxr.safetensors, device: cpu}}",
                   "[group_metrics, {name: attribute_probe, params: {probes: [linear], cv_folds: 3}}]")
    preds = _scores(run_dir)
    np.testing.assert_allclose(preds["score"], _by_hand(net, images[preds["row"].to_numpy()]),
                               rtol=1e-4, atol=1e-5)
    assert 0.1 < (preds["score"] >= 0.5).mean() < 0.9
    result = load_result(run_dir)
    probe = next(m for a in result.arms for m in a.metrics if m.metric == "attribute_probe_auc")
    assert probe.details["representation"] == "model features (1024-d, the input of layer 'classifier')"
    assert any(n.startswith("representation read: model features (1024-d") for n in probe.notes)
    assert "representation read: model features (1024-d" in (run_dir / "report.html").read_text()


def test_probes_say_they_read_pooled_pixels_without_model_features(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    save_file(build_architecture("resnet18", 1).state_dict(), tmp_path / "r.safetensors")
    run_dir = _run(tmp_path, f"{{name: synthetic_cxr, params: {CXR}}}",
                   "{name: torch_checkpoint, params: {arch: resnet18, weights: r.safetensors, device: cpu, "
                   "probe_features: false}}",
                   "[{name: attribute_probe, params: {probes: [linear], cv_folds: 3}}]")
    probe = next(m for a in load_result(run_dir).arms for m in a.metrics if m.metric == "attribute_probe_auc")
    assert probe.details["representation"] == "input pixels pooled to 32×32"


def _png_folder(root: Path, n: int = 40) -> Path:
    from PIL import Image

    rng = np.random.default_rng(5)
    (root / "imgs").mkdir()
    rows = []
    for i in range(n):
        arr = np.clip(rng.normal(60 + 120 * (i % 2), 25, (40, 36)), 0, 255).astype(np.uint8)
        Image.fromarray(arr, mode="L").save(root / "imgs" / f"{i}.png")
        rows.append({"path": f"imgs/{i}.png", "y": i % 2, "sex": "FM"[(i // 2) % 2], "pid": f"p{i}"})
    pd.DataFrame(rows).to_csv(root / "meta.csv", index=False)
    return root


def test_densenet121_pt_state_dict_on_an_image_folder(tmp_path: Path) -> None:
    from fairaudit.builtin.datasets.image_folder import ImageFolderDataset

    _png_folder(tmp_path)
    images = ImageFolderDataset(metadata=str(tmp_path / "meta.csv"), target="y", sensitive=["sex"],
                                patient_id="pid", image_size=32).load().images
    net = _densenet(images, seed=2)
    torch.save(net.state_dict(), tmp_path / "cxr.pt")
    dataset = "{name: image_folder, params: {metadata: meta.csv, target: y, sensitive: [sex], patient_id: pid, " \
              "image_size: 32}}"
    run_dir = _run(tmp_path, dataset, "{name: torch_checkpoint, params: {arch: densenet121, weights: cxr.pt, "
                                      "device: cpu}}")
    preds = _scores(run_dir)
    assert 0 < (preds["score"] >= 0.5).mean() < 1
    np.testing.assert_allclose(preds["score"], _by_hand(net, images[preds["row"].to_numpy()]),
                               rtol=1e-4, atol=1e-5)


FACTORY = '''
import torch
from torch import nn


def build(width=4):
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 2))
'''


def test_a_factory_network_with_softmax_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_cxr_net.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_cxr_net

    torch.manual_seed(4)
    net = my_cxr_net.build(width=6).eval()
    torch.save(net.state_dict(), tmp_path / "net.pt")
    run_dir = _run(tmp_path, f"{{name: synthetic_cxr, params: {CXR}}}",
                   "{name: torch_checkpoint, params: {factory: 'my_cxr_net:build', factory_kwargs: {width: 6}, "
                   "weights: net.pt, num_classes: 2, channels: 1, mean: [0.5], std: [0.25], device: cpu}}",
                   "[group_metrics, {name: attribute_probe, params: {probes: [linear], cv_folds: 3}}]")
    preds = _scores(run_dir)
    x = torch.as_tensor(SyntheticCXR(**CXR).load().images[preds["row"].to_numpy()])
    with torch.no_grad():
        expected = torch.softmax(net((x - 0.5) / 0.25), 1)[:, 1].double().numpy()  # output_index defaults to 1
    np.testing.assert_allclose(preds["score"], expected, atol=1e-6)
    probe = next(m for a in load_result(run_dir).arms for m in a.metrics if m.metric == "attribute_probe_auc")
    assert probe.details["representation"].startswith("model features (6-d, the input of layer '4')")


def test_train_head_changes_only_the_head(tmp_path: Path) -> None:
    data = tiny_images(n=64)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in build_architecture("resnet18", 1).state_dict().items()}
    torch.save(before, tmp_path / "r.pt")
    model = TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "r.pt"), train="head", max_epochs=2, lr=1e-2,
                            input_size=32, device="cpu").fit(data.images, data.y)
    after = model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["fc.bias", "fc.weight"]  # BatchNorm statistics included: untouched
    assert len(model.history_) >= 1


def test_a_later_repeat_fine_tunes_with_its_own_seed(tmp_path: Path) -> None:
    """``random_state`` fixes the first training only: repeat k > 0 of an arm (``repeats: N``)
    trains with the run's seed for that repeat, so retraining varies as for the other models."""
    from fairaudit.base import RunContext

    data = tiny_images(n=64)
    torch.manual_seed(0)
    torch.save(build_architecture("resnet18", 1).state_dict(), tmp_path / "r.pt")

    def head_after(context: RunContext) -> torch.Tensor:
        model = TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "r.pt"), train="head", max_epochs=2,
                                lr=1e-2, input_size=32, device="cpu", random_state=7).bind(context)
        return model.fit(data.images, data.y).state_dict()["fc.weight"]

    first = head_after(RunContext(seed=11, repeat=0))
    assert torch.equal(first, head_after(RunContext(seed=99, repeat=0)))  # repeat 0: random_state decides
    assert not torch.equal(first, head_after(RunContext(seed=11, repeat=1)))


def test_train_full_changes_the_body_too() -> None:
    data = tiny_images(n=40)
    model = TorchCheckpoint(arch="resnet18", train="full", max_epochs=1, input_size=32, device="cpu")
    torch.manual_seed(0)
    model.fit(data.images, data.y)
    fresh = TorchCheckpoint(arch="resnet18", train="full", max_epochs=0, input_size=32, device="cpu")
    torch.manual_seed(0)
    fresh.fit(data.images, data.y)
    a, b = model.state_dict(), fresh.state_dict()
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"]) and not torch.equal(a["fc.weight"], b["fc.weight"])


class _Marker:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_a_pickled_model_is_refused_with_the_file_named_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with open(tmp_path / "model.pt", "wb") as fh:
        pickle.dump({"weights": _Marker(str(marker))}, fh)
    out = _run(tmp_path, f"{{name: synthetic_cxr, params: {CXR}}}",
               "{name: torch_checkpoint, params: {arch: resnet18, weights: model.pt, device: cpu}}", code=4)
    assert f"weights file {tmp_path / 'model.pt'} is not a plain state dict" in out.output
    assert "weights_only" in out.output and "Traceback" not in out.output
    assert not marker.exists()


def test_a_whole_saved_module_is_refused(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 1), tmp_path / "module.pt")  # a pickled nn.Module, not a state dict
    with pytest.raises(CheckpointError, match=r"module\.pt is not a plain state dict"):
        TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "module.pt")).fit(
            np.zeros((2, 1, 32, 32), np.float32), np.array([0, 1]))
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt holds a list, not a state dict"):
        TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "list.pt")).fit(
            np.zeros((2, 1, 32, 32), np.float32), np.array([0, 1]))


def test_a_head_of_another_size_says_which_num_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(build_architecture("resnet18", 14).state_dict(), tmp_path / "chexnet.pt")
    with pytest.raises(CheckpointError, match=r"(?s)fc\.weight: file \[14, 512\], network \[1, 512\].*set num_classes "
                                              r"to the file's 14"):
        TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "chexnet.pt")).fit(
            np.zeros((2, 1, 32, 32), np.float32), np.array([0, 1]))
    with pytest.raises(DataError, match="set output_index"):
        TorchCheckpoint(arch="resnet18", weights=str(tmp_path / "chexnet.pt"), num_classes=14).fit(
            np.zeros((2, 1, 32, 32), np.float32), np.array([0, 1]))


def test_bad_arch_gets_did_you_mean_at_validate(tmp_path: Path) -> None:
    spec = tmp_path / "audit.yaml"
    spec.write_text("name: x\ndataset: {name: synthetic_cxr}\nattributes: [sex]\n"
                    "model:\n  name: torch_checkpoint\n  params: {arch: densnet121, factory: 'not a factory'}\n")
    out = cli("validate", str(spec), catch_exceptions=True)
    assert out.exit_code == 4, out.output
    assert "model.params.arch" in out.output and "did you mean 'densenet121'" in out.output
    assert "model.params.factory" in out.output and "package.module:function" in out.output


def test_wrong_channels_are_named() -> None:
    with pytest.raises(DataError, match=r"first convolution takes 3 channel\(s\); set channels: 3"):
        TorchCheckpoint(arch="resnet18", channels=1, train="full", max_epochs=0).fit(
            np.zeros((2, 1, 32, 32), np.float32), np.array([0, 1]))


@pytest.mark.slow  # ~6 s: resnet18 fine-tuned for three epochs
def test_conformance_kit() -> None:
    from fairaudit.testing import check_model

    check_model(TorchCheckpoint)


def test_the_input_representation_is_named_by_its_shape() -> None:
    from fairaudit.audit.data_stage import probe_representation, representation_name
    from fairaudit.data import AuditDataset

    common = {"name": "t", "y": np.array([0, 1]), "sensitive": pd.DataFrame({"sex": ["F", "M"]}),
              "patient_ids": np.arange(2)}
    features = AuditDataset(**common, X=np.zeros((2, 5), np.float32))
    images = AuditDataset(**common, images=np.zeros((2, 1, 100, 64), np.float32))
    assert representation_name(features) == "input features (5 columns)"
    assert representation_name(images) == "input pixels pooled to 25×16"
    assert probe_representation(images).shape == (2, 25 * 16)


@pytest.mark.slow  # three runs
def test_resume_recomputes_the_arm_when_the_weights_file_changes(tmp_path: Path) -> None:
    weights = tmp_path / "r.pt"
    torch.manual_seed(0)
    torch.save(build_architecture("resnet18", 1).state_dict(), weights)
    run_dir = _run(tmp_path, f"{{name: synthetic_cxr, params: {CXR}}}",
                   f"{{name: torch_checkpoint, params: {{arch: resnet18, weights: '{weights}', device: cpu}}}}")
    before = _scores(run_dir)["score"].to_numpy()
    kept = cli("run", "--resume", str(run_dir), "-q", catch_exceptions=True)
    assert kept.exit_code == 0, kept.output
    assert not any("recomputed on resume" in w for w in load_result(run_dir).warnings)
    torch.manual_seed(1)
    torch.save(build_architecture("resnet18", 1).state_dict(), weights)  # same path, other weights
    redone = cli("run", "--resume", str(run_dir), "-q", catch_exceptions=True)
    assert redone.exit_code == 0, redone.output
    assert any(w.startswith("arm 'baseline' was recomputed on resume") and "model_files" in w
               for w in load_result(run_dir).warnings)
    assert not np.allclose(_scores(run_dir)["score"].to_numpy(), before)
