"""Pydantic models of an audit spec (extra fields forbidden everywhere, to catch typos)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fairaudit.spec.components import COMPONENT_FIELDS, normalise_component

SPEC_SCHEMA_VERSION = 1
#: Largest seed numpy and scikit-learn accept (``random_state`` is a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(StrictModel):
    """A plugin used by the spec: its registered ``name``, an optional ``label`` and ``params``."""

    name: str = Field(min_length=1, description=(
        "Registered plugin name; `distribution:name` picks one when two distributions register the name."))
    label: str | None = Field(None, description="Arm name in the report (default: the plugin name).")
    params: dict[str, Any] = Field(default_factory=dict, description="Plugin parameters.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return normalise_component(value)

    @property
    def arm_name(self) -> str:
        """The label, else the plugin name without its distribution (``dist:name`` -> ``name``)."""
        return self.label or self.name.rpartition(":")[2]


MAX_REPEATS = 50


class ArmComponent(Component):
    """A debiaser or generator arm: a plugin, and how many times to train it."""

    repeats: int | None = Field(None, ge=1, le=MAX_REPEATS, description=(
        "Train this arm N times with derived seeds (1-50; default: the spec's `repeats`); the report "
        "gives the mean, the spread and an interval that includes retraining variance."))
    compare_with: str | None = Field(None, min_length=1, description=(
        "Another arm of this audit (its label) to compare this arm with, besides the baseline: the "
        "report gives this arm's change from it with a paired-bootstrap interval (same test patients, "
        "same resamples as the change from the baseline), e.g. a method against its ablation."))


class GeneratorComponent(ArmComponent):
    """A generator arm: train on synthetic data, and/or augment real training data with it."""

    evaluation: list[Literal["train_on_synthetic", "augment", "counterfactuals", "counterfactual_augment"]] = Field(
        default_factory=lambda: ["train_on_synthetic", "augment"],
        description=(
            "Which evaluations to run for this generator: train_on_synthetic (downstream model trained on "
            "generated images only), augment (real + generated), counterfactuals (the baseline model judged "
            "on the generator's edits of the test images), counterfactual_augment (real training images plus "
            "their counterfactuals, same labels)."
        ),
    )
    n_synthetic: int | None = Field(None, ge=1, description="Synthetic images (default: size of train split).")
    sampling: Literal["as_data", "balanced"] = Field(
        "as_data",
        description=(
            "Conditions of the synthetic images: as_data draws (label, attributes) rows of the training split "
            "at random (its base rates and group sizes); balanced gives every (label, group) cell of the spec's "
            "attributes the same number of images (remainder to the first cells)."
        ),
    )
    counterfactual_factor: str = Field("device", description="Factor edited for counterfactual metrics.")

    def label_of(self, evaluation: str) -> str:
        """The arm name of ``evaluation``: the generator's arm name for the first evaluation,
        ``name (evaluation)`` for the others."""
        if evaluation == self.evaluation[0]:
            return self.arm_name
        return f"{self.arm_name} ({evaluation.replace('_', ' ')})"

    def arm_names(self) -> list[str]:
        return [self.label_of(e) for e in self.evaluation]


class SplitSpec(StrictModel):
    test_size: float = Field(0.3, gt=0, lt=1)
    val_size: float = Field(0.15, ge=0, lt=1)
    stratify: list[str] = Field(default_factory=list, description="Attributes to stratify by (plus the label).")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Split seed (default: the spec's seed).")

    @model_validator(mode="after")
    def _sizes(self) -> SplitSpec:
        if self.test_size + self.val_size > 0.9 + 1e-9:  # 0.45 + 0.45 leaves exactly 10%: accepted
            raise ValueError(f"test_size + val_size must leave at least 10% for training (they leave "
                             f"{100 * (1 - self.test_size - self.val_size):.4g}%)")
        return self


class StatisticsSpec(StrictModel):
    n_boot: int = Field(1000, ge=0, le=100_000)
    ci_level: float = Field(0.95, gt=0.5, lt=1)
    min_group_size: int = Field(30, ge=1)
    min_group_positives: int = Field(5, ge=0)
    n_permutations: int = Field(1000, ge=0, le=100_000)
    multiple_testing: Literal["bh", "none"] = "bh"


class Threshold(StrictModel):
    min: float | None = None
    max: float | None = None
    attribute: str | None = Field(None, description="Only judge this attribute (default: every one).")
    arms: list[str] | None = Field(None, description="Only judge these arms (default: every arm).")

    @model_validator(mode="after")
    def _bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ReportSpec(StrictModel):
    formats: list[Literal["html", "pdf"]] = Field(default_factory=lambda: ["html", "pdf"])
    title: str | None = None


class AuditSpec(StrictModel):
    """A fairness audit: data, model, mitigations, metrics, statistics and report."""

    schema_version: Literal[1] = SPEC_SCHEMA_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Run-folder name.")
    title: str | None = None
    description: str | None = None
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of every random draw (0 to 2**32 - 1).")
    repeats: int = Field(1, ge=1, le=MAX_REPEATS, description=(
        "Train every arm N times (1-50) with seeds derived from `seed` (repeat 0 uses the seed a single "
        "run uses); a debiaser or generator may set its own `repeats`. The report gives each metric's "
        "mean, spread and an interval including retraining variance (docs/statistics.md)."))
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    on_missing_cuda: Literal["warn", "fail"] = "warn"
    mixed_precision: bool = False
    plugins: list[str] = Field(default_factory=list, description=(
        "Local plugin files (.py) to load, relative to the spec's folder and inside its tree (a local plugin "
        "is code: `fairaudit validate` reads them without running them; `run --allow-local-plugins` loads "
        "files from elsewhere)."))
    dataset: Component
    attributes: list[str] = Field(min_length=1, description="Sensitive attributes to audit.")
    intersections: list[list[str]] = Field(default_factory=list)
    split: SplitSpec = Field(default_factory=SplitSpec)
    model: Component = Field(default_factory=lambda: Component(name="logistic"))
    debiasers: list[ArmComponent] = Field(default_factory=list)
    generators: list[GeneratorComponent] = Field(default_factory=list)
    metrics: list[Component] = Field(default_factory=lambda: [Component(name="group_metrics")])
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    statistics: StatisticsSpec = Field(default_factory=StatisticsSpec)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    report: ReportSpec = Field(default_factory=ReportSpec)

    @field_validator("attributes")
    @classmethod
    def _distinct_attributes(cls, value: list[str]) -> list[str]:
        repeated = sorted({a for a in value if value.count(a) > 1})
        if repeated:
            raise ValueError(f"each attribute may be listed once; repeated: {repeated}")
        return value

    @field_validator("intersections")
    @classmethod
    def _intersections(cls, value: list[list[str]]) -> list[list[str]]:
        for combo in value:
            if len(combo) < 2:
                raise ValueError("each intersection lists at least two attributes")
        return value

    @model_validator(mode="after")
    def _consistency(self) -> AuditSpec:
        unknown = sorted({a for combo in self.intersections for a in combo} - set(self.attributes))
        if unknown:
            raise ValueError(f"intersections use attributes not listed in 'attributes': {unknown}")
        labels = self.arm_names()
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"arm names must be unique and not 'baseline' (a generator's later evaluations are "
                             f"named 'label (evaluation)'); repeated: {dupes} (give each a distinct 'label')")
        return self

    def arm_names(self) -> list[str]:
        """Every arm the audit will produce, in order: the baseline, each debiaser, each generator
        evaluation (thresholds' ``arms`` refer to these)."""
        return ["baseline", *(c.arm_name for c in self.debiasers), *(n for g in self.generators for n in g.arm_names())]

    def components(self) -> list[tuple[str, str, Component]]:
        """(family, field path, component) for every plugin the spec uses."""
        out: list[tuple[str, str, Component]] = []
        for spec_field in COMPONENT_FIELDS:
            value = getattr(self, spec_field.field)
            if spec_field.many:
                out += [(spec_field.family, f"{spec_field.field}.{i}", c) for i, c in enumerate(value)]
            else:
                out.append((spec_field.family, spec_field.field, value))
        return out
