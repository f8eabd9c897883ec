"""Contracts of the plugin families: sklearn-style classes that plugins subclass.

Plugins register *classes* through the hooks in :mod:`fairaudit.hookspecs`; the runner
instantiates them with the spec's validated ``params`` and calls them through these
interfaces.  ``__init__`` only stores keyword parameters (scikit-learn's rule).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from fairaudit.estimator import Parameterized

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fairaudit.data import AuditDataset
    from fairaudit.results import ArmResult, AuditResult, MetricResult

Family = Literal["datasets", "models", "debiasers", "generators", "metrics", "report_sections"]


@dataclass
class RunContext:
    """What the runner tells a plugin about the run it is part of."""

    device: str = "cpu"
    seed: int = 0
    work_dir: Path | None = None
    progress: bool = True
    mixed_precision: bool = False

    def checkpoint_path(self, name: str) -> Path | None:
        """Where to store checkpoint ``name`` (``None`` outside a run folder)."""
        if self.work_dir is None:
            return None
        path = self.work_dir / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path / name

    def figure_path(self, name: str) -> Path | None:
        """Where to store figure ``name`` (relative link: ``figures/<name>``)."""
        if self.work_dir is None:
            return None
        path = self.work_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path / name


class Plugin(Parameterized):
    """Common base: a name (the YAML key), a description and tiny test parameters; its parameters are
    its ``__init__`` keywords (``get_params``/``set_params`` as in scikit-learn)."""

    name: ClassVar[str]
    family: ClassVar[Family]
    description: ClassVar[str] = ""
    #: Set by the runner before use; plugins read it through :meth:`run_context`.
    _context: RunContext | None = None

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Small parameter sets for the conformance kit (each runs in seconds on CPU)."""
        return [{}]

    def bind(self, context: RunContext) -> Self:
        """Attach the run context (device, seed, work folder)."""
        self._context = context
        return self

    def run_context(self) -> RunContext:
        return self._context if self._context is not None else RunContext()


class BaseDatasetLoader(Plugin):
    """Loads an :class:`~fairaudit.data.AuditDataset`."""

    family = "datasets"

    @abc.abstractmethod
    def load(self) -> AuditDataset:
        """Load and return the dataset."""

    def check(self, base_dir: Path) -> list[str]:
        """Cheap static checks for ``fairaudit validate`` (files exist, header columns).

        Returns a list of problems (empty when fine); must not load the data itself.
        """
        return []

    def resolve(self, base_dir: Path) -> Self:
        """Make relative paths absolute against the spec's folder (default: nothing to do)."""
        return self


class BaseModel(Plugin):
    """A downstream binary classifier: ``fit`` then ``predict_proba`` -> positive-class score."""

    family = "models"
    #: Input kinds the model accepts.
    modalities: ClassVar[frozenset[str]] = frozenset({"features"})

    @abc.abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None) -> Self:
        """Fit on inputs ``X`` (features ``(n, d)`` or images ``(n, C, H, W)``) and binary ``y``."""

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Score of the positive class, shape ``(n,)``."""


class BaseDebiaser(Plugin):
    """Removes demographic information from a representation.

    ``fit(X, y, *, sensitive_features)`` learns on the training split; ``transform(X)`` maps
    any split to the debiased representation the downstream model is refit on.
    """

    family = "debiasers"
    modalities: ClassVar[frozenset[str]] = frozenset({"features"})
    #: Attributes the debiaser removes; the spec sets ``params.attributes`` when supported.
    stage: ClassVar[Literal["pre", "in", "post"]] = "pre"

    @abc.abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        """Learn the debiasing map on training data."""

    @abc.abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Debiased representation of ``X`` (2-D features for the downstream model)."""

    def transform_train(
        self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Training data for the downstream head; may augment (e.g. randomised latent shifts)."""
        return self.transform(X), y, sensitive_features

    def report_sections(self) -> list[dict[str, Any]]:
        """Extra report content produced while fitting (figures, tables); JSON-serialisable."""
        return []


class BaseGenerator(Plugin):
    """Learns to synthesise images, and optionally to edit them into counterfactuals."""

    family = "generators"
    supports_counterfactuals: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, dataset: AuditDataset) -> Self:
        """Train on the audit's training split."""

    @abc.abstractmethod
    def generate(self, y: np.ndarray, sensitive_features: pd.DataFrame) -> np.ndarray:
        """Images ``(n, C, H, W)`` in ``[0, 1]`` conditioned on labels and groups (one per row)."""

    def counterfactual(self, images: np.ndarray, edit: dict[str, Any]) -> np.ndarray:
        """Edit ``images`` (e.g. ``{"factor": "device", "to": 0}``); generators that can, override."""
        raise NotImplementedError(f"generator {self.name!r} does not produce counterfactuals")

    def report_sections(self) -> list[dict[str, Any]]:
        return []


@dataclass
class StatsConfig:
    """Statistical settings shared by every metric of a run."""

    n_boot: int = 1000
    ci_level: float = 0.95
    min_group_size: int = 30
    min_group_positives: int = 5
    n_permutations: int = 1000
    seed: int = 0


@dataclass
class MetricContext:
    """Everything a metric may need about one arm on the test split.

    Prediction metrics use ``y_true``/``y_score``; probe metrics use ``features`` (and the
    ``*_train`` fields); counterfactual metrics use ``images``, ``counterfactuals`` and
    ``predict_fn``.  Fields a metric does not need may be ``None``.
    """

    y_true: np.ndarray
    sensitive: pd.DataFrame
    patient_ids: np.ndarray
    y_score: np.ndarray | None = None
    threshold: float = 0.5
    attributes: list[str] = field(default_factory=list)
    intersections: list[list[str]] = field(default_factory=list)
    stats: StatsConfig = field(default_factory=StatsConfig)
    features: np.ndarray | None = None
    features_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    sensitive_train: pd.DataFrame | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    val_y_true: np.ndarray | None = None
    val_y_score: np.ndarray | None = None
    images: np.ndarray | None = None
    counterfactuals: dict[str, np.ndarray] = field(default_factory=dict)
    predict_fn: Any = None
    artefact_oracle: Any = None
    context: RunContext = field(default_factory=RunContext)


class BaseMetric(Plugin):
    """Computes one or more :class:`~fairaudit.results.MetricResult` for an arm."""

    family = "metrics"
    #: What the metric consumes: "scores" (predictions), "features" (representation probes),
    #: "counterfactuals" (image pairs and a classifier).
    requires: ClassVar[frozenset[str]] = frozenset({"scores"})

    @abc.abstractmethod
    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        """Results for every attribute in ``ctx.attributes`` (and intersections)."""


class BaseReportSection(Plugin):
    """A report section a plugin adds: a jinja2 template and the context it needs."""

    family = "report_sections"
    #: Jinja2 template source (rendered with autoescape) for the section body.
    template: ClassVar[str]
    title: ClassVar[str] = ""
    order: ClassVar[int] = 100

    @abc.abstractmethod
    def context(self, result: AuditResult, arm: ArmResult | None) -> dict[str, Any] | None:
        """Template variables, or ``None`` when the section has nothing to show."""
