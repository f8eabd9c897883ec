"""Write torchvision_state_keys.json: torchvision's state-dict keys and shapes, written out by hand.

The names and shapes follow torchvision's module definitions (torchvision/models/densenet.py and
resnet.py: module names, channel arithmetic, BatchNorm buffers), enumerated here without torch and
without fairaudit's networks, so the test that compares them is not circular.  Run from the repo
root: ``python tests/core/data/make_torchvision_state_keys.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

NUM_CLASSES = 1000


def conv(prefix: str, c_out: int, c_in: int, k: int) -> list[list]:
    return [[f"{prefix}.weight", [c_out, c_in, k, k]]]


def bn(prefix: str, c: int) -> list[list]:
    return [[f"{prefix}.{p}", [c]] for p in ("weight", "bias", "running_mean", "running_var")] + [
        [f"{prefix}.num_batches_tracked", []]]


def linear(prefix: str, c_out: int, c_in: int) -> list[list]:
    return [[f"{prefix}.weight", [c_out, c_in]], [f"{prefix}.bias", [c_out]]]


def densenet(growth: int, blocks: tuple[int, ...], init: int) -> list[list]:
    keys = conv("features.conv0", init, 3, 7) + bn("features.norm0", init)
    c = init
    for b, n in enumerate(blocks, start=1):
        for i in range(n):
            p = f"features.denseblock{b}.denselayer{i + 1}"
            c_in = c + i * growth
            keys += bn(f"{p}.norm1", c_in) + conv(f"{p}.conv1", 4 * growth, c_in, 1)
            keys += bn(f"{p}.norm2", 4 * growth) + conv(f"{p}.conv2", growth, 4 * growth, 3)
        c += n * growth
        if b < len(blocks):
            keys += bn(f"features.transition{b}.norm", c) + conv(f"features.transition{b}.conv", c // 2, c, 1)
            c //= 2
    return keys + bn("features.norm5", c) + linear("classifier", NUM_CLASSES, c)


def resnet(bottleneck: bool, layers: tuple[int, ...]) -> list[list]:
    keys = conv("conv1", 64, 3, 7) + bn("bn1", 64)
    expansion = 4 if bottleneck else 1
    c = 64
    for s, n in enumerate(layers, start=1):
        planes = 64 * 2 ** (s - 1)
        for i in range(n):
            p = f"layer{s}.{i}"
            if bottleneck:
                keys += conv(f"{p}.conv1", planes, c, 1) + bn(f"{p}.bn1", planes)
                keys += conv(f"{p}.conv2", planes, planes, 3) + bn(f"{p}.bn2", planes)
                keys += conv(f"{p}.conv3", planes * 4, planes, 1) + bn(f"{p}.bn3", planes * 4)
            else:
                keys += conv(f"{p}.conv1", planes, c, 3) + bn(f"{p}.bn1", planes)
                keys += conv(f"{p}.conv2", planes, planes, 3) + bn(f"{p}.bn2", planes)
            stride = 2 if (s > 1 and i == 0) else 1
            if stride != 1 or c != planes * expansion:
                width = planes * expansion
                keys += conv(f"{p}.downsample.0", width, c, 1) + bn(f"{p}.downsample.1", width)
            c = planes * expansion
    return keys + linear("fc", NUM_CLASSES, c)


REFERENCE = {
    "densenet121": densenet(32, (6, 12, 24, 16), 64),
    "densenet169": densenet(32, (6, 12, 32, 32), 64),
    "resnet18": resnet(False, (2, 2, 2, 2)),
    "resnet34": resnet(False, (3, 4, 6, 3)),
    "resnet50": resnet(True, (3, 4, 6, 3)),
}

if __name__ == "__main__":
    out = Path(__file__).with_name("torchvision_state_keys.json")
    body = ",\n".join(
        f"  {json.dumps(arch)}: [\n" + ",\n".join(f"    {json.dumps(entry)}" for entry in keys) + "\n  ]"
        for arch, keys in REFERENCE.items())
    out.write_text(f'{{"num_classes": {NUM_CLASSES}, "architectures": {{\n{body}\n}}}}\n')
    print(out, {k: len(v) for k, v in REFERENCE.items()})
