"""Leakage guard of the default features: columns that give the target away, and row identifiers.

A column *gives the target away* when, on its own, it separates the two classes (almost) perfectly:
either its value maps to the target as a function over few distinct values (a copy of the label,
the raw ``"yes"``/``"no"`` the 0/1 target was coded from) or a threshold on it ranks the classes
apart (single-column ROC AUC >= 0.999 or <= 0.001: the raw measurement the target was derived
from).  An *identifier* is a column with one value per row (integers or text), or text with a
distinct value for at least half of the rows.  Neither says anything a model should learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

#: Single-column AUC (or 1 - AUC) from which a column counts as separating the target.
SEPARATING_AUC = 0.999
#: A column whose value -> target mapping is a function counts when it has at most this many values.
FUNCTION_MAX_VALUES = 10
#: Fewer rows per class than this: too little data to call a separation leakage.
MIN_CLASS_ROWS = 5
#: Fewer rows than this: too few to call a column an identifier.
MIN_ID_ROWS = 20
#: The AUC screen reads at most this many rows (a seeded subset); candidates are confirmed on all.
SCREEN_ROWS = 5000


def suspicious_columns(frame: pd.DataFrame, columns: Sequence[str], y: np.ndarray) -> dict[str, str]:
    """``{column: reason}`` for the ``columns`` of ``frame`` that are identifiers or give the 0/1
    target ``y`` away (in ``columns``' order)."""
    y = np.asarray(y).astype(np.int64)
    found: dict[str, str] = {}
    numeric: list[str] = []
    for column in columns:
        series = frame[column]
        reason = identifier_reason(series) or mapping_reason(series, y)
        if reason:
            found[column] = reason
        elif _is_number(series):
            numeric.append(column)
    for column, auc in separating_columns(frame, numeric, y).items():
        found[column] = f"a threshold on it separates the target: single-column AUC {auc:.3f}"
    return {c: found[c] for c in columns if c in found}


def identifier_reason(series: pd.Series) -> str | None:
    """Why ``series`` looks like a row identifier, or ``None``."""
    n = len(series)
    if n < MIN_ID_ROWS or pd.api.types.is_bool_dtype(series):
        return None
    present = series.dropna()
    distinct = int(present.nunique())
    if _is_number(series):
        values = present.to_numpy(dtype=np.float64)
        if distinct == n and np.all(np.mod(values, 1) == 0):
            return "whole numbers, unique per row: an identifier"
        return None
    if distinct == n:
        return "unique per row: an identifier"
    if distinct >= 0.5 * n:
        return f"{distinct} distinct values in {n} rows: an identifier or free text"
    return None


def mapping_reason(series: pd.Series, y: np.ndarray) -> str | None:
    """Why ``series`` gives ``y`` away as a function of few values (each value seen with one
    class only), or ``None``."""
    present = series.notna().to_numpy()
    if not _both_classes(y[present]):
        return None
    codes, values = pd.factorize(series[present])
    if not 2 <= len(values) <= FUNCTION_MAX_VALUES:
        return None
    rows = np.bincount(codes, minlength=len(values))
    positives = np.bincount(codes, weights=y[present], minlength=len(values))
    if not np.all((positives == 0) | (positives == rows)):
        return None
    shown = sorted(zip(map(str, values), positives, strict=True))[:4]
    pairs = ", ".join(f"{v!r} -> {int(p > 0)}" for v, p in shown)
    more = ", ..." if len(values) > 4 else ""
    return f"its value gives the target exactly: {pairs}{more}"


def separating_columns(frame: pd.DataFrame, columns: Sequence[str], y: np.ndarray) -> dict[str, float]:
    """``{column: AUC}`` of the numeric ``columns`` whose single-column ROC AUC is >= 0.999 or
    <= 0.001 (rows with a missing value left out per column).  Large tables are screened on a
    seeded subset of :data:`SCREEN_ROWS` rows first, each candidate then confirmed on every row."""
    if not columns or not _both_classes(y):
        return {}
    rows = np.arange(len(y))
    if len(rows) > SCREEN_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), SCREEN_ROWS, replace=False))
    screen_cut = 0.99 if len(rows) < len(y) else SEPARATING_AUC
    found = {}
    for start in range(0, len(columns), 256):
        chunk = list(columns[start:start + 256])
        block = frame[chunk].to_numpy(dtype=np.float64)
        for j, auc in enumerate(_aucs(block[rows], y[rows])):
            if max(auc, 1 - auc) < screen_cut:
                continue
            full = auc if len(rows) == len(y) else _aucs(block[:, [j]], y)[0]
            if max(full, 1 - full) >= SEPARATING_AUC:
                found[chunk[j]] = full
    return found


def _aucs(block: np.ndarray, y: np.ndarray) -> list[float]:
    """ROC AUC of each column of ``block`` as a score for ``y`` (NaN rows left out; 0.5 when a
    column leaves fewer than :data:`MIN_CLASS_ROWS` rows of a class)."""
    out = []
    for j in range(block.shape[1]):
        x = block[:, j]
        keep = ~np.isnan(x)
        yk = y[keep]
        if not _both_classes(yk):
            out.append(0.5)
            continue
        ranks = rankdata(x[keep])
        n1 = int(yk.sum())
        n0 = len(yk) - n1
        out.append(float((ranks[yk == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)))
    return out


def _both_classes(y: np.ndarray) -> bool:
    n1 = int(np.sum(y == 1))
    return n1 >= MIN_CLASS_ROWS and len(y) - n1 >= MIN_CLASS_ROWS


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def describe(found: dict[str, str]) -> str:
    """``'a' (reason), 'b' (reason)`` for a warning."""
    return "; ".join(f"{column!r} ({reason})" for column, reason in found.items())
