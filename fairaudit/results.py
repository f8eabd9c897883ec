"""Schema-versioned result objects written to ``result.json`` (the report is rendered from them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

RESULT_SCHEMA_VERSION = 2
#: The group of :meth:`AuditResult.to_frame` rows that hold a value over every group.
ALL_GROUPS = "(all)"

#: What a result *is*, declared by the metric that emits it; the report dispatches on it.
#:
#: * ``value``: a value over every test sample (``per_group`` holds the groups' values); the same
#:   under every attribute, so the report shows it once.
#: * ``gap``: a difference between groups of ``derived_from`` (0 = parity; forest plots).
#: * ``ratio``: a ratio between groups of ``derived_from`` (1 = parity).
#: * ``worst_group``: the worst group's value of ``derived_from``.
#: * ``curve``: per-group curve data in ``details["curves"]`` (ROC, calibration).
#: * ``probe``: how well an attribute can be predicted from a representation (0.5 = chance).
#: * ``attack``: a gap traced over attack strengths (``details`` holds the series).
#: * ``change``: an arm's change from a reference arm (``ArmResult.versus_baseline``).
Role = Literal["value", "gap", "ratio", "worst_group", "curve", "probe", "attack", "change"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupValue(_Model):
    """A metric's value for one group, with its bootstrap CI."""

    attribute: str
    group: str
    n: int
    n_pos: int | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    too_small: bool = False


class OverSeeds(_Model):
    """A metric over the arm's training seeds (``repeats: N``): the per-seed values, their mean and
    SD, and an interval that covers test-set sampling and retraining variance together
    (:mod:`fairaudit.stats.over_seeds`).  The result's own ``value``/``ci_*`` stay repeat 0's."""

    n: int
    values: list[float] = Field(default_factory=list)
    mean: float
    sd: float
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = "seed_t"


class MetricResult(_Model):
    """One metric of one arm for one sensitive attribute (or intersection)."""

    metric: str
    plugin: str
    attribute: str | None = None
    label: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    higher_is_better: bool | None = None
    #: What the result is (see :data:`Role`); the report places it by this, never by its name.
    role: Role = "value"
    #: Belongs to the executive summary's comparison of arms (a metric's key figures).
    headline: bool = False
    #: The per-group metric a gap, ratio or worst-group value is computed from
    #: (e.g. ``true_positive_rate`` for ``equal_opportunity_difference``); for a ``change``, the
    #: metric whose change it is.
    derived_from: str | None = None
    #: An alternative form of another result (a ratio beside a gap, a gap to the overall value, a
    #: signed or mean variant, a worst-group value): kept in result.json, counted but not listed
    #: in the report's tables.
    variant: bool = False
    status: Literal["ok", "too_small", "error", "not_applicable"] = "ok"
    per_group: list[GroupValue] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    #: Over the arm's training seeds, when it was trained more than once (else ``None``).
    over_seeds: OverSeeds | None = None

    def estimate(self) -> tuple[float | None, float | None, float | None]:
        """(value, CI low, CI high) to judge and compare: over seeds when the arm was repeated."""
        if self.over_seeds is not None:
            return self.over_seeds.mean, self.over_seeds.ci_low, self.over_seeds.ci_high
        return self.value, self.ci_low, self.ci_high


class Verdict(_Model):
    """A declared threshold judged with the CI in view."""

    arm: str
    metric: str
    attribute: str | None
    min: float | None = None
    max: float | None = None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    outcome: Literal["pass", "fail", "inconclusive", "too_small", "missing"]
    reason: str = ""


# ---------------------------------------------------------------- blocks: content an arm's plugin adds
class _Block(_Model):
    title: str = ""
    caption: str = ""


class TableBlock(_Block):
    """A table: ``rows`` are lists of cells, or mappings from column name to cell."""

    kind: Literal["table"] = "table"
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any] | dict[str, Any]] = Field(default_factory=list)


class TextBlock(_Block):
    """Paragraphs of plain text (blank lines separate paragraphs)."""

    kind: Literal["text"] = "text"
    text: str = ""


class ImageBlock(_Block):
    """An image inside the run folder (``path``) or an embedded PNG/JPEG ``data_uri``."""

    kind: Literal["image_grid"] = "image_grid"
    path: str | None = None
    data_uri: str | None = None


class CurveSeries(_Model):
    name: str
    x: list[float | None] = Field(default_factory=list)
    y: list[float | None] = Field(default_factory=list)


class CurveBlock(_Block):
    """Line series drawn in one plot."""

    kind: Literal["curve"] = "curve"
    series: list[CurveSeries] = Field(default_factory=list)
    xlabel: str = ""
    ylabel: str = ""


#: Report content a debiaser or generator adds to its arm (``report_blocks()``), by ``kind``.
Block = Annotated[TableBlock | TextBlock | ImageBlock | CurveBlock, Field(discriminator="kind")]


# ---------------------------------------------------------------- what the run recorded
class GroupSummary(_Model):
    group: str
    n: int
    prevalence: float | None = None


class SplitSummary(_Model):
    """Size, prevalence and groups of one split."""

    n: int
    n_patients: int | None = None
    prevalence: float | None = None
    modality: str = ""
    shape: list[int] = Field(default_factory=list)
    groups: dict[str, list[GroupSummary]] = Field(default_factory=dict)
    #: Per attribute with more groups than a table lists (``fairaudit.caps.MAX_GROUPS``): how many
    #: smaller groups were left out of ``groups`` and the rows they hold (``{"groups": k, "n": rows}``).
    groups_omitted: dict[str, dict[str, int]] = Field(default_factory=dict)


class DatasetSummary(_Model):
    """The audited data: plugin, parameters, per-split summaries and content hash."""

    name: str = ""
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, SplitSummary] = Field(default_factory=dict)
    hash: str | None = None


class ComponentSettings(_Model):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class Settings(_Model):
    """The settings every number of the result depends on."""

    seed: int = 0
    n_boot: int | None = None
    ci_level: float | None = None
    min_group_size: int | None = None
    min_group_positives: int | None = None
    n_permutations: int | None = None
    attributes: list[str] = Field(default_factory=list)
    intersections: list[list[str]] = Field(default_factory=list)
    threshold: float | None = None
    device: str = ""
    model: ComponentSettings | None = None
    split: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    multiple_testing: str | None = None
    #: Training repeats per arm by default (``repeats:`` of the spec; an arm may set its own).
    repeats: int = 1
    #: The arm every other arm's paired change (``versus_baseline``) is measured from: the
    #: baseline, or the first model of an audit of given scores.
    reference_arm: str = "baseline"


class Provenance(_Model):
    """Versions, hashes, device and timings of the run."""

    fairaudit_version: str = ""
    python: str = ""
    platform: str = ""
    packages: dict[str, str | None] = Field(default_factory=dict)
    plugins: dict[str, str | None] = Field(default_factory=dict)
    git: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    data_hash: str | None = None
    device: str = ""
    world_size: int = 1
    descriptions: dict[str, str] = Field(default_factory=dict)
    threads: dict[str, Any] = Field(default_factory=dict)

    @property
    def torch(self) -> str | None:
        return self.packages.get("torch")


class ArmResult(_Model):
    """The baseline, one mitigation (debiaser or generator), or one model's given scores
    (``predictions``), evaluated on the test split."""

    name: str
    kind: Literal["baseline", "debiaser", "generator", "predictions"]
    plugin: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    traceback: str | None = None
    metrics: list[MetricResult] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    artefacts: dict[str, str] = Field(default_factory=dict)
    #: Content the arm's plugin added (tables, text, images, curves).
    blocks: list[Block] = Field(default_factory=list)
    #: Change from the reference arm (``Settings.reference_arm``: this arm minus the reference)
    #: with paired-bootstrap CIs: results of role ``change`` from every metric that offers them.
    versus_baseline: list[MetricResult] = Field(default_factory=list)
    #: Change from the arm the spec entry names in ``compare_with`` (this arm minus that arm),
    #: keyed by that arm's name: the same results as ``versus_baseline`` (same metrics, same paired
    #: bootstrap, same patient resamples), measured from another arm.
    versus: dict[str, list[MetricResult]] = Field(default_factory=dict)
    #: How many times the arm was trained, and the training seed of each repeat (repeat 0 first;
    #: ``metrics`` are repeat 0's, each with its ``over_seeds`` summary when ``repeats > 1``).
    repeats: int = 1
    seeds: list[int] = Field(default_factory=list)

    def metric(self, metric: str, attribute: str | None = None) -> MetricResult | None:
        """The first result named ``metric`` (for ``attribute`` when given)."""
        for m in self.metrics:
            if m.metric == metric and (attribute is None or m.attribute == attribute):
                return m
        return None


class AuditResult(_Model):
    """Everything a report needs; written to ``result.json``."""

    schema_version: int = RESULT_SCHEMA_VERSION
    name: str
    title: str
    created: str
    dataset: DatasetSummary = Field(default_factory=DatasetSummary)
    settings: Settings = Field(default_factory=Settings)
    arms: list[ArmResult] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    provenance: Provenance = Field(default_factory=Provenance)
    #: The validated spec (defaults filled in), as data: what the report reads.
    spec: dict[str, Any] = Field(default_factory=dict)
    #: The spec exactly as given (shown in the report's appendix).
    spec_text: str = ""
    _run_dir: Path | None = PrivateAttr(default=None)

    @property
    def run_dir(self) -> Path | None:
        """The run folder this result was written to, when it came from a run in this process."""
        return self._run_dir

    def arm(self, name: str) -> ArmResult | None:
        return next((a for a in self.arms if a.name == name), None)

    def reference(self) -> ArmResult | None:
        """The arm every other arm is compared with (``settings.reference_arm``), if it finished."""
        found = self.arm(self.settings.reference_arm)
        return found if found is not None and found.status == "ok" else None

    def to_frame(self) -> Any:
        """Every number of the result as a pandas DataFrame: one row per arm × metric × attribute ×
        group, with group ``"(all)"`` for the value over every group (a gap, a ratio, an overall
        rate) and for an arm's paired change from the reference arm (role ``change``).  Columns:
        arm, metric, attribute, group, value, ci_low, ci_high, n, role.  Curves (role ``curve``)
        keep their points in result.json only."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        for arm in self.arms:
            for m in [*arm.metrics, *arm.versus_baseline]:
                if m.role == "curve":
                    continue
                n = sum(g.n for g in m.per_group) if m.per_group else None
                rows.append({"arm": arm.name, "metric": m.metric, "attribute": m.attribute, "group": ALL_GROUPS,
                             "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": n, "role": m.role})
                rows += [{"arm": arm.name, "metric": m.metric, "attribute": g.attribute, "group": g.group,
                          "value": g.value, "ci_low": g.ci_low, "ci_high": g.ci_high, "n": g.n, "role": m.role}
                         for g in m.per_group]
        columns = ["arm", "metric", "attribute", "group", "value", "ci_low", "ci_high", "n", "role"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["n"] = frame["n"].astype("Int64")
        for column in ("value", "ci_low", "ci_high"):
            frame[column] = frame[column].astype("float64")
        return frame

    def write_report(self, folder: str | Path,
                     formats: tuple[str, ...] | list[str] = ("html", "pdf")) -> dict[str, Path]:
        """Render the report of this result into ``folder`` (``report.html``, ``report.pdf``,
        ``figures/``), with the installed plugins' report sections; returns the files by format."""
        from fairaudit.plugins import load_plugins
        from fairaudit.report import write_reports

        plugins = load_plugins()
        sections = [plugins.report_sections.create(name) for name in plugins.report_sections.names()]
        return write_reports(self, Path(folder), formats=tuple(formats), plugin_sections=sections)


def read_result(source: str | Path) -> AuditResult:
    """An :class:`AuditResult` from a ``result.json`` path (or its text), upgrading results
    written with an older schema version (see :mod:`fairaudit.results_v1`)."""
    import json

    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    data = json.loads(text)
    if isinstance(data, dict) and data.get("schema_version", RESULT_SCHEMA_VERSION) == 1:
        from fairaudit.results_v1 import upgrade

        data = upgrade(data)
    return AuditResult.model_validate(data)
