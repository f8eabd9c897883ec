"""Contracts of the plugin families: sklearn-style classes that plugins subclass.

Plugins register *classes* through the hooks in :mod:`fairaudit.hookspecs`; the runner
instantiates them with the spec's validated ``params`` and calls them through these
interfaces.  ``__init__`` only stores keyword parameters (scikit-learn's rule).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from fairaudit.estimator import Parameterized

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from fairaudit.data import AuditDataset
    from fairaudit.results import ArmResult, AuditResult, MetricResult, Role

LOG = logging.getLogger("fairaudit")

Family = Literal["datasets", "models", "debiasers", "generators", "metrics", "report_sections"]


@dataclass
class RunContext:
    """What the runner tells a plugin about the run it is part of.

    ``progress`` is the run's one progress switch (``fairaudit run -q`` turns it off): plugins
    show progress bars only when it is on (a plugin's own ``progress`` parameter, if it has one,
    defaults to it).
    """

    device: str = "cpu"
    seed: int = 0
    work_dir: Path | None = None
    progress: bool = True
    mixed_precision: bool = False
    #: Which training of the arm this is (``repeats: N``): 0 for the first (or only) one; a later
    #: repeat has its own ``seed``.
    repeat: int = 0

    def training_seed(self, fixed: int | None = None) -> int:
        """The seed a plugin trains with: its own fixed seed (e.g. a ``random_state`` parameter)
        in the first training, else the run's seed; a later repeat (``repeats: N``) always uses
        the run's seed, its own, so that retraining varies."""
        return int(fixed) if fixed is not None and self.repeat == 0 else int(self.seed)

    @classmethod
    def standalone(cls) -> RunContext:
        """The context of a plugin used outside an audit (never bound by a runner): device
        ``"auto"`` resolved (CUDA when torch sees one, else CPU), seed 0, no run folder (so no
        checkpoint or figure paths), progress bars on."""
        return cls(device=_auto_device(), seed=0, work_dir=None, progress=True)

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


def _auto_device() -> str:
    """``"cuda"`` when torch is installed and sees a GPU, else ``"cpu"``."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class Plugin(Parameterized):
    """Common base: a name (the YAML key), a description and tiny test parameters; its parameters are
    its ``__init__`` keywords (``get_params``/``set_params`` as in scikit-learn)."""

    name: ClassVar[str]
    family: ClassVar[Family]
    description: ClassVar[str] = ""

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Small parameter sets for the conformance kit (each runs in seconds on CPU)."""
        return [{}]

    def bind(self, context: RunContext) -> Self:
        """Attach the run context (device, seed, work folder, progress); the runner binds every
        plugin it creates.  The context belongs to this instance only."""
        self._context = context
        return self

    def run_context(self) -> RunContext:
        """The context this plugin was bound to; a plugin never bound (used on its own, e.g. in
        a notebook or a test) is bound to :meth:`RunContext.standalone` on first use."""
        context: RunContext | None = getattr(self, "_context", None)
        if context is None:
            context = RunContext.standalone()
            LOG.debug("%s %r is not bound to a run; using a standalone context (device %s)",
                      self.family, getattr(self, "name", type(self).__name__), context.device)
            self._context = context
        return context


class BaseDatasetLoader(Plugin):
    """Loads an :class:`~fairaudit.data.AuditDataset`."""

    family = "datasets"
    #: The loaded dataset holds a model's scores (``AuditDataset.scores``): the audit trains no
    #: model and splits nothing; a spec with ``model:``, ``split:``, debiasers or generators is refused.
    provides_scores: ClassVar[bool] = False
    #: What ``load()`` gives the model: ``"features"`` or ``"images"`` (``None``: it depends on the
    #: parameters). ``validate`` refuses a model or debiaser that cannot take it.
    modality: ClassVar[str | None] = None

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

    def representation(self, X: np.ndarray) -> tuple[np.ndarray, str] | None:
        """Optional capability: the fitted model's own representation of ``X``, ``(n, d)``, and
        words for it (e.g. a network's penultimate layer, ``"model features (1024-d)"``).  The
        representation probes read it instead of the inputs; ``None`` (default): the model has none."""
        return None

    def resolve(self, base_dir: Path) -> Self:
        """Make relative paths (e.g. a weights file) absolute against the spec's folder."""
        return self

    def input_files(self) -> list[Path]:
        """Files the model reads (e.g. its weights), after :meth:`resolve`: their contents are part
        of every arm's fingerprint, so ``--resume`` recomputes arms when a file changes."""
        return []


class BaseDebiaser(Plugin):
    """Removes demographic information from a representation (a *pre-processing* mitigation).

    ``fit(X, y, *, sensitive_features)`` learns on the training split; ``transform(X)`` maps
    any split to the debiased representation the downstream model is refit on, with the
    weights of :meth:`sample_weight` (``None``: unweighted).  In- and post-processing
    mitigations subclass :class:`BaseInProcessor` and :class:`BasePostProcessor`.
    """

    family = "debiasers"
    modalities: ClassVar[frozenset[str]] = frozenset({"features"})
    #: Where the mitigation acts: ``pre`` transforms the inputs (and may weight the rows), ``in``
    #: trains the downstream model itself, ``post`` adjusts the fitted baseline's decisions.
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

    def sample_weight(self, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> np.ndarray | None:
        """Row weights for the downstream model's fit on the training split (``None``: unweighted)."""
        return None

    def report_blocks(self) -> list[Any]:
        """Report content produced while fitting: blocks (:mod:`fairaudit.results`: table, text,
        image, curve) or the equivalent JSON-safe dicts with a ``kind`` key."""
        return []


class _ModelMitigation(BaseDebiaser):
    """In/post-processing: the representation is left as it is; the mitigation acts on the model."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` unchanged (an in/post-processing mitigation does not touch the representation)."""
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        return X

    def fit(self, X: np.ndarray, y: np.ndarray, *, sensitive_features: pd.DataFrame) -> Self:
        """Standalone use: the mitigation around a default logistic model (the runner calls
        :meth:`fit_model` with the spec's model instead)."""
        from fairaudit.builtin.models.logistic import LogisticModel

        model = LogisticModel()
        if self.stage == "post":
            model.fit(X, y)
        return self.fit_model(model, X, y, sensitive_features=sensitive_features)

    @abc.abstractmethod
    def fit_model(self, model: BaseModel, X: np.ndarray, y: np.ndarray, *,
                  sensitive_features: pd.DataFrame) -> Self:
        """Fit the mitigation around ``model`` on training data; the fitted model is ``model_``."""


class BaseInProcessor(_ModelMitigation):
    """An *in-processing* mitigation: trains (copies of) the spec's downstream model under a
    fairness constraint; ``predict_proba(X)`` scores with the constrained classifier."""

    stage: ClassVar[Literal["pre", "in", "post"]] = "in"

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Positive-class score of the mitigated classifier, shape ``(n,)``."""


class BasePostProcessor(_ModelMitigation):
    """A *post-processing* mitigation: ``fit_model`` receives the **fitted** baseline model and
    learns group-specific decisions; ``predict_proba(X, sensitive_features=...)`` needs the groups."""

    stage: ClassVar[Literal["pre", "in", "post"]] = "post"

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray, *, sensitive_features: pd.DataFrame) -> np.ndarray:
        """Adjusted score (or 0/1 decision) of the baseline model given each row's groups, ``(n,)``."""


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

    def report_blocks(self) -> list[Any]:
        """Report content produced while fitting (see :meth:`BaseDebiaser.report_blocks`)."""
        return []


@dataclass
class StatsConfig:
    """Statistical settings shared by every metric of a run: the spec's ``statistics`` and its
    ``seed`` (built by :func:`fairaudit.spec.settings.stats_config`, field for field)."""

    n_boot: int = 1000
    ci_level: float = 0.95
    min_group_size: int = 30
    min_group_positives: int = 5
    n_permutations: int = 1000
    multiple_testing: Literal["bh", "none"] = "bh"
    seed: int = 0


#: Prefix of an oracle set's label in results (``"oracle:device"``); a generated set's label is its factor.
ORACLE_LABEL = "oracle:"


@dataclass
class CounterfactualSets:
    """The test images' counterfactual sets, keyed by the factor flipped: ``oracle`` (rendered
    exactly by the dataset: ground truth) and ``generated`` (the arm's generator's edits)."""

    oracle: dict[str, np.ndarray] = field(default_factory=dict)
    generated: dict[str, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.oracle or self.generated)

    def labelled(self) -> dict[str, np.ndarray]:
        """Every set under its label in results: ``oracle:<factor>``, or the factor of a generated set."""
        return {**{ORACLE_LABEL + f: v for f, v in self.oracle.items()}, **self.generated}

    @classmethod
    def from_labelled(cls, sets: dict[str, np.ndarray]) -> CounterfactualSets:
        """The inverse of :meth:`labelled`."""
        return cls(oracle={k.removeprefix(ORACLE_LABEL): v for k, v in sets.items() if k.startswith(ORACLE_LABEL)},
                   generated={k: v for k, v in sets.items() if not k.startswith(ORACLE_LABEL)})


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
    #: Words for the representation in ``features``, e.g. "input pixels pooled to 32×32",
    #: "model features (1024-d, ...)": probe results say which one they read.
    features_name: str | None = None
    y_train: np.ndarray | None = None
    sensitive_train: pd.DataFrame | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    val_y_true: np.ndarray | None = None
    val_y_score: np.ndarray | None = None
    images: np.ndarray | None = None
    #: Counterfactual image sets of the test images, oracle and generated, by factor.
    counterfactuals: CounterfactualSets = field(default_factory=CounterfactualSets)
    #: The arm's classifier: images -> positive-class scores.
    predict_fn: Callable[[np.ndarray], np.ndarray] | None = None
    #: Whether each image shows the dataset's artefact (e.g. a support device): images -> 0/1.
    artefact_oracle: Callable[[np.ndarray], np.ndarray] | None = None
    context: RunContext = field(default_factory=RunContext)


@dataclass(frozen=True)
class MetricOutput:
    """A result a metric can emit, declared up front: what it is (its
    :data:`~fairaudit.results.Role`), whether it is a key figure, what it derives from.

    ``fairaudit validate`` checks threshold names against these; the report places results by
    the same fields, which every emitted :class:`~fairaudit.results.MetricResult` carries.
    """

    name: str
    role: Role = "value"
    headline: bool = False
    derived_from: str | None = None
    variant: bool = False
    higher_is_better: bool | None = None

    def declared(self) -> dict[str, Any]:
        """The fields a :class:`~fairaudit.results.MetricResult` of this output carries."""
        return {"role": self.role, "headline": self.headline, "derived_from": self.derived_from,
                "variant": self.variant}


@dataclass
class PairedContext:
    """What a metric needs to compare arms on the same test patients: every arm's test scores
    (``scores``: arm name -> scores, the ``reference`` arm among them) and the test split."""

    y_true: np.ndarray
    scores: dict[str, np.ndarray]
    sensitive: pd.DataFrame
    patient_ids: np.ndarray
    reference: str = "baseline"
    threshold: float = 0.5
    attributes: list[str] = field(default_factory=list)
    intersections: list[list[str]] = field(default_factory=list)
    stats: StatsConfig = field(default_factory=StatsConfig)


class BaseMetric(Plugin):
    """Computes one or more :class:`~fairaudit.results.MetricResult` for an arm."""

    family = "metrics"
    #: What the metric consumes: "scores" (predictions), "features" (representation probes),
    #: "counterfactuals" (image pairs and a classifier).
    requires: ClassVar[frozenset[str]] = frozenset({"scores"})

    @abc.abstractmethod
    def compute(self, ctx: MetricContext) -> list[MetricResult]:
        """Results for every attribute in ``ctx.attributes`` (and intersections)."""

    def outputs(self) -> list[MetricOutput]:
        """The results this metric (with its parameters) can emit; empty when undeclared."""
        return []

    def paired_changes(self, ctx: PairedContext) -> dict[str, list[MetricResult]]:
        """Optional capability: each arm's change from ``ctx.reference`` on the same patients
        (role ``change``, with paired intervals), keyed by arm name.  The runner calls it on
        every metric that overrides it, once all arms are scored."""
        raise NotImplementedError(f"metric {self.name!r} does not compare arms")

    @classmethod
    def offers_paired_changes(cls) -> bool:
        """Whether the metric overrides :meth:`paired_changes`."""
        return cls.paired_changes is not BaseMetric.paired_changes


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
