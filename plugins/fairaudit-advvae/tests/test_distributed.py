"""DDP readiness: two CPU processes (gloo, as under ``torchrun``) train one debiaser in sync."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = """
import os, sys
import numpy as np, pandas as pd
import torch.distributed as dist
from fairaudit.training import init_distributed_from_env
from fairaudit_advvae import AdversarialVAEDebiaser

assert init_distributed_from_env("gloo")
rng = np.random.default_rng(0)
X = rng.normal(size=(400, 16)).astype(np.float32)
y = (rng.random(400) < 0.4).astype(int)
sf = pd.DataFrame({"sex": rng.choice(["F", "M"], 400), "age": rng.uniform(30, 90, 400)})
X[:, 0] += 2 * y
X[:, 1] += 2 * (sf["sex"] == "M")
est = AdversarialVAEDebiaser(attributes=("sex", "age"), latent_dim=8, max_epochs=3, min_epochs=1,
                             audit_epochs=1, progress=False, device="cpu", random_state=0)
est.fit(X, y, sensitive_features=sf)
np.save(os.path.join(sys.argv[1], f"rank{dist.get_rank()}.npy"), est.transform(X))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_process_ddp_stays_in_sync(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    a, b = np.load(tmp_path / "rank0.npy"), np.load(tmp_path / "rank1.npy")
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
