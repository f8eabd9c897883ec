"""Classification architectures by name: torchvision's when it imports, else our own twins.

Our DenseNet and ResNet are written so that ``state_dict()`` has torchvision's key names and
tensor shapes exactly (tests/core/data/torchvision_state_keys.json is the reference), so a
checkpoint saved from a torchvision model loads into them directly, and vice versa.  Other
torchvision architectures (EfficientNet, ViT, ...) are available only when torchvision imports,
or through a ``factory:``.

torch is imported when a network is built, never at module import.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from fairaudit.errors import PluginError

if TYPE_CHECKING:
    from torch import nn

#: densenet: (growth rate, layers per dense block, initial features); torchvision's settings.
DENSENETS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}
#: resnet: (block kind, blocks per stage).
RESNETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}
#: Built here (torchvision-identical state dicts), with or without torchvision.
OWN = frozenset({*DENSENETS, *RESNETS})
#: Known torchvision classification architectures that only torchvision (or a factory) builds.
TORCHVISION_ONLY = frozenset({
    "alexnet", "convnext_tiny", "convnext_small", "convnext_base", "densenet161",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_v2_s", "efficientnet_v2_m", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "regnet_y_400mf", "resnet152", "resnext50_32x4d", "swin_t", "vgg16", "vgg16_bn",
    "vit_b_16", "vit_b_32", "vit_l_16", "wide_resnet50_2",
})
KNOWN = OWN | TORCHVISION_ONLY
#: The final layer of each family (its input is the penultimate representation).
HEADS = {"densenet": "classifier", "resnet": "fc", "resnext": "fc", "wide_resnet": "fc", "efficientnet": "classifier.1",
         "mobilenet_v2": "classifier.1", "mobilenet_v3": "classifier.3", "vit": "heads.head",
         "convnext": "classifier.2", "swin": "head", "regnet": "fc", "vgg": "classifier.6", "alexnet": "classifier.6"}


def check_arch(name: str | None) -> str | None:
    """``name`` if it is a known architecture; else a ``ValueError`` with the closest names."""
    if name is None or name in KNOWN:
        return name
    close = difflib.get_close_matches(name, sorted(KNOWN), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise ValueError(f"unknown architecture {name!r}: {hint}built in: {', '.join(sorted(OWN))}; other torchvision "
                     "names (efficientnet_b0, vit_b_16, ...) need torchvision; any other network: use `factory:`")


def head_name(arch: str) -> str:
    """The module name of ``arch``'s final layer (``classifier``, ``fc``, ...)."""
    for prefix, head in sorted(HEADS.items(), key=lambda kv: -len(kv[0])):
        if arch.startswith(prefix):
            return head
    return "fc"


def torchvision_models() -> Any | None:
    """``torchvision.models`` when torchvision imports (it may not beside a CPU-only torch)."""
    try:
        import torchvision.models as models
    except Exception:  # ImportError, or a torchvision built for another torch ("operator ... does not exist")
        return None
    return models


def build_architecture(arch: str, num_classes: int, *, prefer_torchvision: bool = True) -> nn.Module:
    """An untrained ``arch`` with ``num_classes`` outputs: torchvision's if it imports, else ours."""
    check_arch(arch)
    models = torchvision_models() if prefer_torchvision else None
    if models is not None and hasattr(models, arch):
        return getattr(models, arch)(weights=None, num_classes=num_classes)
    if arch in DENSENETS:
        growth, blocks, init = DENSENETS[arch]
        return DenseNet(growth, blocks, init, num_classes)
    if arch in RESNETS:
        kind, layers = RESNETS[arch]
        return ResNet(kind, layers, num_classes)
    raise PluginError(f"architecture {arch!r} needs torchvision, which is not importable here (torchvision must "
                      f"match the installed torch); built in without it: {', '.join(sorted(OWN))}. Or give "
                      "`factory: \"package.module:build\"` returning your network")


_OLD_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$")


def rename_legacy_keys(state: dict[str, Any]) -> dict[str, Any]:
    """Old torchvision DenseNet checkpoints name ``norm.1`` what is now ``norm1``: renamed."""
    return {(_OLD_DENSE_KEY.sub(r"\1\2", k)): v for k, v in state.items()}


def _torch_nn() -> Any:
    from torch import nn

    return nn


# ----------------------------------------------------------------------------- DenseNet
def DenseNet(growth: int, blocks: tuple[int, ...], init_features: int, num_classes: int,
             bn_size: int = 4) -> nn.Module:
    """Densely connected network (Huang et al. 2017), module for module as torchvision lays it out."""
    return _densenet_class()(growth, blocks, init_features, num_classes, bn_size)


def _densenet_class() -> type:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class _DenseLayer(nn.Module):
        def __init__(self, c_in: int, growth: int, bn_size: int):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(c_in)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))

    class _DenseBlock(nn.Module):
        def __init__(self, n_layers: int, c_in: int, growth: int, bn_size: int):
            super().__init__()
            for i in range(n_layers):
                self.add_module(f"denselayer{i + 1}", _DenseLayer(c_in + i * growth, growth, bn_size))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.children():
                x = torch.cat([x, layer(x)], 1)
            return x

    class _Transition(nn.Sequential):
        def __init__(self, c_in: int, c_out: int):
            super().__init__()
            self.norm = nn.BatchNorm2d(c_in)
            self.relu = nn.ReLU(inplace=True)
            self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
            self.pool = nn.AvgPool2d(2, 2)

    class _DenseNet(nn.Module):
        def __init__(self, growth: int, blocks: tuple[int, ...], init_features: int, num_classes: int,
                     bn_size: int):
            super().__init__()
            self.features = nn.Sequential()
            self.features.add_module("conv0", nn.Conv2d(3, init_features, 7, 2, 3, bias=False))
            self.features.add_module("norm0", nn.BatchNorm2d(init_features))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
            c = init_features
            for i, n_layers in enumerate(blocks):
                self.features.add_module(f"denseblock{i + 1}", _DenseBlock(n_layers, c, growth, bn_size))
                c += n_layers * growth
                if i < len(blocks) - 1:
                    self.features.add_module(f"transition{i + 1}", _Transition(c, c // 2))
                    c //= 2
            self.features.add_module("norm5", nn.BatchNorm2d(c))
            self.classifier = nn.Linear(c, num_classes)
            _init(self)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = F.adaptive_avg_pool2d(F.relu(self.features(x)), 1)
            return self.classifier(torch.flatten(out, 1))

    return _DenseNet


# ----------------------------------------------------------------------------- ResNet
def ResNet(kind: str, layers: tuple[int, ...], num_classes: int) -> nn.Module:
    """Residual network (He et al. 2016; stride on the 3×3 conv, "v1.5"), laid out as torchvision's."""
    return _resnet_class()(kind, layers, num_classes)


def _resnet_class() -> type:
    import torch
    from torch import nn

    class _Basic(nn.Module):
        expansion = 1

        def __init__(self, c_in: int, planes: int, stride: int, downsample: nn.Module | None):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class _Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, c_in: int, planes: int, stride: int, downsample: nn.Module | None):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class _ResNet(nn.Module):
        def __init__(self, kind: str, layers: tuple[int, ...], num_classes: int):
            super().__init__()
            block = _Basic if kind == "basic" else _Bottleneck
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            c = 64
            for i, n_blocks in enumerate(layers):
                planes, stride = 64 * 2**i, 1 if i == 0 else 2
                stage = []
                for b in range(n_blocks):
                    s = stride if b == 0 else 1
                    down = None
                    if s != 1 or c != planes * block.expansion:
                        down = nn.Sequential(nn.Conv2d(c, planes * block.expansion, 1, s, bias=False),
                                             nn.BatchNorm2d(planes * block.expansion))
                    stage.append(block(c, planes, s, down))
                    c = planes * block.expansion
                self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c, num_classes)
            _init(self)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return _ResNet


def _init(module: nn.Module) -> None:
    """He-normal convolutions, unit BatchNorm, zero linear bias (torchvision's initialisation)."""
    nn = _torch_nn()
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
