"""Image folders streamed through a DataLoader with workers: lazy subsets, identical training."""

from __future__ import annotations

import pickle
import textwrap

import numpy as np
import pytest

from fairaudit.builtin.datasets.image_folder import ImageFolderDataset, write_example
from fairaudit.builtin.models.cnn import SmallCNN
from fairaudit.lazy_images import LazyImages
from fairaudit.results import AuditResult
from fairaudit.testing.runs import cli, load_result, only_run_dir

PARAMS = {"target": "label", "sensitive": ["sex"], "patient_id": "patient", "image_size": 16}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("folder"), n=80)


def test_streamed_folder_decodes_what_the_eager_loader_reads(folder):
    eager = ImageFolderDataset(metadata=str(folder), **PARAMS).load()
    lazy = ImageFolderDataset(metadata=str(folder), stream=True, **PARAMS).load()
    assert isinstance(lazy.images, LazyImages) and lazy.images.shape == eager.images.shape
    np.testing.assert_array_equal(np.asarray(lazy.images), eager.images)
    rows = np.array([70, 3, 3, 41])
    sub = lazy.subset(rows)
    assert isinstance(sub.images, LazyImages)  # a subset is row numbers, nothing decoded
    np.testing.assert_array_equal(np.asarray(sub.images), eager.images[rows])
    np.testing.assert_array_equal(sub.images[1], eager.images[3])
    twin = pickle.loads(pickle.dumps(sub.images))  # what DataLoader workers receive
    np.testing.assert_array_equal(np.asarray(twin), eager.images[rows])


def test_cnn_trains_identically_on_streamed_images(folder):
    eager = ImageFolderDataset(metadata=str(folder), **PARAMS).load()
    lazy = ImageFolderDataset(metadata=str(folder), stream=True, **PARAMS).load()
    kw = {"channels": [4, 8], "max_epochs": 3, "batch_size": 16, "device": "cpu", "random_state": 1}
    a = SmallCNN(**kw).fit(eager.images, eager.y).predict_proba(eager.images)
    b = SmallCNN(**kw).fit(lazy.images, lazy.y).predict_proba(lazy.images)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # worker processes decode the batches; torch draws their seed from the shuffling generator,
    # so the order differs from the single-process one but is reproducible
    c = SmallCNN(**kw, num_workers=2).fit(lazy.images, lazy.y).predict_proba(lazy.images)
    d = SmallCNN(**kw, num_workers=2).fit(lazy.images, lazy.y).predict_proba(lazy.images)
    np.testing.assert_array_equal(c, d)
    assert np.abs(c - a).max() < 0.05


def _audit(folder, tmp_path, stream: bool, workers: int) -> AuditResult:
    spec = tmp_path / f"spec-{stream}-{workers}.yaml"
    spec.write_text(textwrap.dedent(f"""\
        name: streamed
        dataset:
          name: image_folder
          params: {{metadata: "{folder}", target: label, sensitive: [sex], patient_id: patient,
                    image_size: 16, stream: {str(stream).lower()}}}
        attributes: [sex]
        model: {{name: cnn, params: {{channels: [4, 8], max_epochs: 3, device: cpu, num_workers: {workers}}}}}
        metrics: [group_metrics, attribute_probe]
        statistics: {{n_boot: 50, n_permutations: 50, min_group_size: 5}}
        report: {{formats: [html]}}
        """))
    out = tmp_path / f"out-{stream}-{workers}"
    result = cli("run", spec, "-o", out, "-q")
    assert result.exit_code in (0, 1), result.output
    return load_result(only_run_dir(out))


@pytest.mark.slow
def test_audit_on_a_streamed_folder_equals_the_in_memory_audit(folder, tmp_path):
    def auc(res: AuditResult) -> float:
        return next(m.value for m in res.arms[0].metrics if m.metric == "roc_auc" and m.attribute == "sex")

    eager, lazy = _audit(folder, tmp_path, False, 0), _audit(folder, tmp_path, True, 0)
    assert auc(lazy) == pytest.approx(auc(eager), abs=1e-6)
    assert lazy.dataset.hash and lazy.dataset.hash != eager.dataset.hash  # file fingerprints
    probe = {m.metric: m for m in lazy.arms[0].metrics if m.plugin == "attribute_probe"}
    assert probe and all(m.status in ("ok", "too_small") for m in probe.values())
    with_workers = _audit(folder, tmp_path, True, 2)
    assert with_workers.arms[0].status == "ok"
