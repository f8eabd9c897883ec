"""Built-in dataset plugins: synthetic embeddings, chest X-ray phantoms, tables, image folders, and
existing predictions."""

from __future__ import annotations

import importlib

from fairaudit.hookspecs import hookimpl
from fairaudit.registry import Registry

#: ``module: class`` of every built-in dataset loader.
_LOADERS = {
    "synthetic_embeddings": "SyntheticEmbeddings",
    "synthetic_cxr": "SyntheticCXR",
    "table": "TableDataset",
    "image_folder": "ImageFolderDataset",
    "image_npz": "ImageNpzDataset",
    "embeddings_npy": "EmbeddingsNpyDataset",
    "predictions": "PredictionsDataset",
}


@hookimpl
def fairaudit_register_datasets(registry: Registry) -> None:
    """Register the built-in datasets."""
    for module, cls_name in _LOADERS.items():
        mod = importlib.import_module(f"{__name__}.{module}")
        registry.add(getattr(mod, cls_name))
