"""Our DenseNet/ResNet have torchvision's state-dict layout exactly, so torchvision checkpoints load.

The reference (data/torchvision_state_keys.json) is written by data/make_torchvision_state_keys.py
from torchvision's module definitions, without torch and without our networks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fairaudit.builtin.models._architectures import (  # noqa: E402
    OWN,
    build_architecture,
    check_arch,
    rename_legacy_keys,
    torchvision_models,
)
from fairaudit.errors import PluginError  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "data" / "torchvision_state_keys.json").read_text())


@pytest.mark.parametrize("arch", sorted(REFERENCE["architectures"]))
def test_state_dict_keys_and_shapes_are_torchvisions(arch: str) -> None:
    with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
        net = build_architecture(arch, REFERENCE["num_classes"], prefer_torchvision=False)
    ours = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert ours == REFERENCE["architectures"][arch]  # same names, same order, same shapes


def test_reference_counts_match_torchvision_published_sizes() -> None:
    """Parameter counts from the reference equal torchvision's documented ones (its model docs:
    resnet18 11,689,512; resnet50 25,557,032; densenet121 7,978,856)."""
    def params(arch: str) -> int:
        total = 0
        for key, shape in REFERENCE["architectures"][arch]:
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    assert params("resnet18") == 11_689_512
    assert params("resnet50") == 25_557_032
    assert params("densenet121") == 7_978_856


def test_networks_run_and_give_num_classes_outputs() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    for arch in ("resnet18", "resnet50", "densenet121"):
        net = build_architecture(arch, 3, prefer_torchvision=False).eval()
        with torch.no_grad():
            out = net(x)
        assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert OWN >= {"densenet121", "densenet169", "resnet18", "resnet34", "resnet50"}


def test_a_checkpoint_moves_between_our_networks_unchanged() -> None:
    torch.manual_seed(1)
    a = build_architecture("resnet18", 2, prefer_torchvision=False).eval()
    b = build_architecture("resnet18", 2, prefer_torchvision=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_unknown_name_suggests_the_close_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown architecture 'densenet12': did you mean 'densenet121'"):
        check_arch("densenet12")
    with pytest.raises(ValueError, match=r"resnet50.*use `factory:`"):
        check_arch("my_net")
    assert check_arch("vit_b_16") == "vit_b_16"


@pytest.mark.skipif(torchvision_models() is not None, reason="torchvision imports here")
def test_torchvision_only_architectures_say_so_without_torchvision() -> None:
    with pytest.raises(PluginError, match=r"'efficientnet_b0' needs torchvision.*factory"):
        build_architecture("efficientnet_b0", 1)


def test_legacy_densenet_keys_are_renamed() -> None:
    old = {"features.denseblock1.denselayer1.norm.1.weight": 1, "features.denseblock1.denselayer1.conv.2.weight": 2,
           "features.norm5.weight": 3}
    assert rename_legacy_keys(old) == {"features.denseblock1.denselayer1.norm1.weight": 1,
                                       "features.denseblock1.denselayer1.conv2.weight": 2,
                                       "features.norm5.weight": 3}
