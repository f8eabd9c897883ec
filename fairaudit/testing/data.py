"""Tiny, seeded inputs for the conformance kit (built-in synthetic datasets at small sizes)."""

from __future__ import annotations

from fairaudit.data import AuditDataset


def tiny_features(seed: int = 0, n: int = 240, dim: int = 24) -> AuditDataset:
    """Embeddings with an injected sex signal and a learnable label."""
    from fairaudit.builtin.datasets.synthetic_embeddings import SyntheticEmbeddings

    return SyntheticEmbeddings(n_samples=n, dim=dim, seed=seed).load()


def tiny_images(seed: int = 0, n: int = 48, size: int = 32) -> AuditDataset:
    """Chest-radiograph phantoms with masks and a counterfactual oracle."""
    from fairaudit.builtin.datasets.synthetic_cxr import SyntheticCXR

    return SyntheticCXR(n_samples=n, image_size=size, seed=seed).load()
