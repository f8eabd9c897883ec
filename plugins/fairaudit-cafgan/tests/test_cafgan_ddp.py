"""The GAN loop under DistributedDataParallel: two CPU (gloo) processes stay in sync."""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WORKER = """
import sys
import numpy as np
import torch
import torch.distributed as dist

from fairaudit.training import init_distributed_from_env, rank, unwrap, wrap_ddp
from fairaudit_cafgan.losses import reference_stats
from fairaudit_cafgan.networks import (
    ConditionalGenerator, DiagnosticCNN, LungUNet, ProjectionCritic, freeze,
)
from fairaudit_cafgan.trainer import FrozenCritics, GANSettings, train_gan

torch.set_num_threads(1)
assert init_distributed_from_env("gloo")
me = rank()
try:
    torch.manual_seed(0)  # same initial weights on both ranks
    G, D = ConditionalGenerator(8, 4, 32, 4), ProjectionCritic(4, 32, 4)
    clf, seg = freeze(DiagnosticCNN(32, 4)), freeze(LungUNet(4, depth=2))
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(64, 1, 32, 32, generator=gen)
    y = torch.randint(0, 2, (64,), generator=gen)
    group = torch.randint(0, 2, (64,), generator=gen)
    critics = FrozenCritics(clf, seg, reference_stats(torch.rand(8, 32, 32)))
    # each rank sees its own data shard and noise: only DDP's all-reduce keeps them equal
    settings = GANSettings(z_dim=8, n_groups=2, n_critic=2, batch_size=8, n_steps=3,
                           lambda_fair=1.0, lambda_clinic=1.0, fair_per_group=2,
                           fair_groups=[0, 1], seed=0)
    Gd, Dd = wrap_ddp(G, "cpu"), wrap_ddp(D, "cpu")
    assert Gd is not G and Dd is not D
    history = train_gan(Gd, Dd, images, y, group, critics, settings)
    assert history[-1]["generator_steps"] == 3
    flat = [p.detach().flatten() for m in (unwrap(Gd), unwrap(Dd)) for p in m.parameters()]
    np.save(f"{sys.argv[1]}/rank{me}.npy", torch.cat(flat).numpy())
finally:
    dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_process_gloo_training_keeps_ranks_in_sync(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    procs = []
    for r in range(2):
        env = {
            **os.environ,
            "RANK": str(r),
            "LOCAL_RANK": str(r),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    a, b = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
