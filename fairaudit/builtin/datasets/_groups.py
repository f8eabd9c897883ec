"""Groups of every dataset: sensitive columns as groups, ``bins:`` for continuous attributes, the
"looks continuous" warning; and the synthetic datasets' demographic draws and group label noise."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired

import numpy as np
import pandas as pd
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from fairaudit.builtin.datasets._tabular_io import DEFAULT_NA
from fairaudit.errors import DataError

#: The group of rows whose sensitive value is missing.
MISSING_GROUP = "(missing)"
#: An attribute "looks continuous" with more distinct numeric values than this ...
CONTINUOUS_MIN_VALUES = 20
#: ... and than this fraction of the rows.
CONTINUOUS_MIN_FRACTION = 0.05


@with_config(ConfigDict(extra="forbid"))
class BinEdges(TypedDict):
    """Edges of the bins of one attribute, with optional labels (one per bin)."""

    edges: list[float]
    labels: NotRequired[list[str]]


#: ``bins:`` of a loader: per attribute, increasing edges, or edges with labels.
Bins = dict[str, list[float] | BinEdges]

#: Age-group bins used by every built-in dataset (years).
AGE_GROUPS: tuple[str, str, str] = ("<50", "50-65", ">65")


def age_group(age: np.ndarray) -> np.ndarray:
    """Bin continuous ages into ``"<50"``, ``"50-65"``, ``">65"`` (object array)."""
    age = np.asarray(age, dtype=float)
    idx = np.digitize(age, [50.0, 65.0 + 1e-9])
    out = np.asarray(AGE_GROUPS, dtype=object)[idx]
    return out


def draw_age(rng: np.random.Generator, n: int, low: float = 30.0, high: float = 90.0) -> np.ndarray:
    """Ages (years): a normal around the range's middle, clipped to ``[low, high]``."""
    mid, spread = (low + high) / 2.0, (high - low) / 4.5
    return np.clip(rng.normal(mid, spread, n), low, high)


def patient_layout(n: int, images_per_patient: int, rng: np.random.Generator) -> np.ndarray:
    """Patient index of each row: ``images_per_patient`` rows per patient, rows shuffled."""
    if images_per_patient < 1:
        raise DataError(f"images_per_patient must be >= 1, got {images_per_patient}")
    n_patients = int(np.ceil(n / images_per_patient))
    pid = np.repeat(np.arange(n_patients), images_per_patient)[:n]
    return pid[rng.permutation(n)]


def flip_rates(
    noise: Mapping[str, float],
    sensitive: pd.DataFrame,
    categories: Mapping[str, Sequence[str]],
    dataset: str,
) -> np.ndarray:
    """Per-row label flip probability from ``{"sex=F": 0.2, "C": 0.1, ...}``.

    A key is ``"attribute=value"`` or a bare value that belongs to exactly one attribute of
    ``categories``.  A row in several noisy groups is flipped with ``1 - prod(1 - rate)``.
    """
    keep = np.ones(len(sensitive))
    for key, rate in noise.items():
        if not 0.0 <= float(rate) <= 0.5:
            raise DataError(f"{dataset}: group_label_noise[{key!r}] = {rate} must lie in [0, 0.5]")
        if "=" in key:
            attr, value = (part.strip() for part in key.split("=", 1))
            owners = [attr] if value in categories.get(attr, ()) else []
        else:
            value = key.strip()
            owners = [a for a, values in categories.items() if value in values]
        if len(owners) != 1:
            known = ", ".join(f"{a}={v}" for a, values in categories.items() for v in values)
            raise DataError(f"{dataset}: group_label_noise key {key!r} names no single group; "
                            f"use one of: {known}")
        hit = (sensitive[owners[0]].astype(str) == value).to_numpy()
        keep[hit] *= 1.0 - float(rate)
    return 1.0 - keep


# ---------------------------------------------------------------------- groups from columns
def sensitive_frame(frame: pd.DataFrame, columns: list[str], label: str,
                    bins: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Sensitive columns as object arrays of groups.

    A column named in ``bins`` is cut into its intervals (see :func:`apply_bins`); any other that
    looks continuous is warned of (see :func:`warn_if_continuous`).  Missing values become the
    group ``"(missing)"`` (warned)."""
    out = {}
    for col in columns:
        if bins and col in bins:
            values = apply_bins(frame[col], col, bins[col], label)
        else:
            warn_if_continuous(frame[col], col, label)
            values = frame[col].astype(object)
        na = pd.isna(values).to_numpy()
        if na.any():
            warnings.warn(f"{label}: sensitive column {col!r} has {int(na.sum())} missing "
                          f"value(s); they form the group {MISSING_GROUP!r}", UserWarning,
                          stacklevel=3)
            values = values.where(~na, MISSING_GROUP)
        out[col] = values.to_numpy(dtype=object)
    return pd.DataFrame(out)


def bin_edges(spec: Any) -> tuple[list[float], list[str] | None]:
    """Edges and labels (``None``: default labels) of one attribute's ``bins:`` entry."""
    if isinstance(spec, Mapping):
        return [float(e) for e in spec.get("edges", [])], spec.get("labels")
    return [float(e) for e in spec], None


def check_bins(bins: Mapping[str, Any] | None, sensitive: Sequence[str],
               kind: str = "sensitive columns") -> list[str]:
    """Problems with a loader's ``bins:`` (static: no data read); its keys must be in ``sensitive``
    (called ``kind`` in the message)."""
    problems: list[str] = []
    for column, spec in (bins or {}).items():
        where = f"bins[{column!r}]"
        if column not in sensitive:
            problems.append(f"{where}: {column!r} is not one of the {kind} {list(sensitive)}")
        edges, labels = bin_edges(spec)
        if len(edges) < 2:
            problems.append(f"{where}: give at least two edges (one bin), got {edges}")
            continue
        if any(math.isnan(e) for e in edges):
            problems.append(f"{where}: an edge is NaN ({edges})")
            continue
        steps = [(a, b) for a, b in itertools.pairwise(edges) if not b > a]
        if steps:
            a, b = steps[0]
            problems.append(f"{where}: the edges must increase strictly, but {_num(a)} is followed by "
                            f"{_num(b)} in [{', '.join(map(_num, edges))}]")
        if labels is not None:
            if len(labels) != len(edges) - 1:
                problems.append(f"{where}: {len(edges)} edges make {len(edges) - 1} bins but "
                                f"{len(labels)} labels are given {labels}")
            elif len(set(labels)) != len(labels) or not all(str(x).strip() for x in labels):
                problems.append(f"{where}: the labels must be distinct and non-empty, got {labels}")
    return problems


def default_labels(edges: Sequence[float]) -> list[str]:
    """``"[50, 65)"`` per bin (the last closed: ``"[65, 120]"``); ``"<50"`` / ``">=65"`` for
    open ends (``-inf`` / ``inf``)."""
    out = []
    last = len(edges) - 2
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        if math.isinf(a) and math.isinf(b):
            out.append("all")
        elif math.isinf(a):
            out.append(f"<{_num(b)}" if i < last else f"<={_num(b)}")
        elif math.isinf(b):
            out.append(f">={_num(a)}")
        else:
            out.append(f"[{_num(a)}, {_num(b)}{')' if i < last else ']'}")
    return out


def apply_bins(series: pd.Series, column: str, spec: Any, label: str) -> pd.Series:
    """The bin label of each value (object series; missing values stay missing).

    Bins are ``[e0, e1), [e1, e2), ..., [e(k-1), ek]`` (the last one closed).  pandas' usual
    missing-value strings (``NA``, ``None`` ...) count as missing here, since they are no
    number; any other value that is no number, or a number outside ``[e0, ek]``, is an error
    naming the attribute and how many values are at fault."""
    edges, labels = bin_edges(spec)
    problems = check_bins({column: spec}, [column])
    if problems:
        raise DataError(f"{label}: {problems[0]}")
    names = np.asarray(labels if labels is not None else default_labels(edges), dtype=object)
    raw = series.astype(object)
    missing = raw.isna().to_numpy() | raw.isin(DEFAULT_NA).to_numpy()
    numbers = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    text = ~missing & np.isnan(numbers)
    if text.any():
        shown = ", ".join(repr(v) for v in pd.unique(raw[text])[:5])
        raise DataError(f"{label}: bins[{column!r}]: {int(text.sum())} value(s) of {column!r} are not numbers "
                        f"(e.g. {shown}); clean them, or list them in params.na_values to read them as missing")
    present = ~missing
    outside = present & ((numbers < edges[0]) | (numbers > edges[-1]))
    if outside.any():
        low, high = float(np.min(numbers[outside])), float(np.max(numbers[outside]))
        raise DataError(f"{label}: bins[{column!r}]: {int(outside.sum())} value(s) of {column!r} lie outside the "
                        f"edges [{_num(edges[0])}, {_num(edges[-1])}] (from {_num(low)} to {_num(high)}); "
                        "widen the edges, or leave an end open with -.inf or .inf")
    index = np.clip(np.searchsorted(edges, numbers[present], side="right") - 1, 0, len(edges) - 2)
    out = np.full(len(raw), np.nan, dtype=object)
    out[present] = names[index]
    return pd.Series(out, index=series.index, dtype=object)


def warn_if_continuous(series: pd.Series, column: str, label: str) -> bool:
    """Warn (and return ``True``) when a sensitive column looks continuous: numbers only, with more
    than 20 distinct values and more than 5 % of the rows, so that it would make one group per
    value; the warning suggests ``bins:`` with edges at the data's terciles."""
    if pd.api.types.is_bool_dtype(series):
        return False
    present = series.dropna()
    if present.empty:
        return False
    numbers = pd.to_numeric(present, errors="coerce") if not pd.api.types.is_numeric_dtype(present) else present
    if numbers.isna().any():
        return False
    distinct = int(numbers.nunique())
    if distinct <= CONTINUOUS_MIN_VALUES or distinct <= CONTINUOUS_MIN_FRACTION * len(series):
        return False
    edges = suggest_edges(numbers.to_numpy(dtype=np.float64))
    warnings.warn(f"{label}: sensitive attribute {column!r} looks continuous ({distinct} distinct numeric "
                  f"values in {len(series)} rows), so each value would be its own group; group it with "
                  f"bins in dataset.params, e.g. `bins: {{{column}: [{', '.join(map(_num, edges))}]}}`",
                  UserWarning, stacklevel=4)
    return True


def suggest_edges(values: np.ndarray) -> list[float]:
    """Edges at the minimum, terciles and maximum, rounded outwards to whole numbers when the range
    is wide (>= 10), else to 2 decimals."""
    lo, hi = float(values.min()), float(values.max())
    digits = 0 if hi - lo >= 10 else 2
    scale = 10.0 ** digits
    inner = [round(float(q), digits) for q in np.quantile(values, [1 / 3, 2 / 3])]
    edges = [math.floor(lo * scale) / scale, *inner, math.ceil(hi * scale) / scale]
    return sorted(set(edges))


def _num(x: float) -> str:
    """A number as YAML would want it (``50``, ``0.5``, ``.inf``)."""
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    return f"{x:g}"


def binned_extras(sensitive: pd.DataFrame, extras: Mapping[str, np.ndarray], bins: Mapping[str, Any] | None,
                  label: str) -> pd.DataFrame:
    """``sensitive`` plus, per ``bins`` key, a group column cut from the continuous extra of that
    name (the synthetic datasets' ``bins: {age: [...]}``)."""
    out = sensitive.copy()
    for column, spec in (bins or {}).items():
        out[column] = apply_bins(pd.Series(extras[column]), column, spec, label).to_numpy(dtype=object)
    return out
