"""Encode sensitive attributes (and intersections of several) as integer group codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from fairaudit.errors import DataError

#: Separator of attribute names and of group labels in an intersection ("sex&age_group", "F&>65").
INTERSECTION_SEP = "&"
#: Label of the group formed by rows whose attribute value is missing.
MISSING_LABEL = "(missing)"

MissingPolicy = Literal["group", "drop", "error"]


@dataclass(frozen=True)
class Groups:
    """Integer group codes of one attribute (or intersection).

    Attributes
    ----------
    attribute:
        Attribute name; intersections join names with ``&``.
    codes:
        ``(n,)`` int64 code per row in ``[0, n_groups)``; ``-1`` marks a dropped row.
    names:
        Group label of each code (sorted like fairlearn's ``by_group`` index).
    """

    attribute: str
    codes: np.ndarray
    names: list[str]

    @property
    def n_groups(self) -> int:
        return len(self.names)

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the rows that belong to a group."""
        return self.codes >= 0

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes[self.kept], minlength=self.n_groups)


def _factorize(
    values: pd.Series, missing: MissingPolicy, attribute: str
) -> tuple[np.ndarray, list[str]]:
    values = pd.Series(values).reset_index(drop=True)
    isna = values.isna().to_numpy()
    if isna.any():
        if missing == "error":
            raise DataError(f"attribute {attribute!r} has {int(isna.sum())} missing value(s)")
        if missing == "group":
            values = values.astype("object").where(~isna, MISSING_LABEL)
    try:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    except TypeError:  # mixed types that do not sort together: compare as text
        codes, uniques = pd.factorize(
            values.astype(str).where(~isna), sort=True, use_na_sentinel=True
        )
    names = [str(u) for u in uniques]
    if len(set(names)) != len(names):
        raise DataError(
            f"attribute {attribute!r}: distinct values print the same ({names}); "
            "recode the column to distinct labels"
        )
    return codes.astype(np.int64), names


def encode_groups(
    sensitive: pd.DataFrame | pd.Series | np.ndarray | Sequence[object],
    columns: str | Sequence[str] | None = None,
    *,
    missing: MissingPolicy = "group",
) -> Groups:
    """Integer group codes for one attribute or the intersection of several.

    Parameters
    ----------
    sensitive:
        A DataFrame of attributes, or one column of group labels (strings, integers...).
    columns:
        Column name, or several for an intersection (rows grouped by the combination).
    missing:
        Rows with a missing value (``NaN``/``None``): ``"group"`` forms the group
        ``"(missing)"``, ``"drop"`` gives them code ``-1``, ``"error"`` raises.
    """
    if isinstance(sensitive, pd.DataFrame):
        if columns is None:
            raise ValueError("columns is required when sensitive is a DataFrame")
        cols = [columns] if isinstance(columns, str) else list(columns)
        absent = [c for c in cols if c not in sensitive.columns]
        if absent:
            raise DataError(
                f"attribute(s) {absent} not in the sensitive columns {list(sensitive.columns)}"
            )
        series = [sensitive[c] for c in cols]
    else:
        name = columns if isinstance(columns, str) else "group"
        cols = [name]
        series = [
            pd.Series(
                np.asarray(sensitive, dtype=object)
                if not isinstance(sensitive, pd.Series)
                else sensitive
            )
        ]
    attribute = INTERSECTION_SEP.join(cols)
    if len(series) == 1:
        codes, names = _factorize(series[0], missing, attribute)
        return Groups(attribute, codes, names)
    parts = [_factorize(s, missing, c) for s, c in zip(series, cols, strict=True)]
    combined = np.zeros(len(parts[0][0]), dtype=np.int64)
    dropped = np.zeros(len(combined), dtype=bool)
    for codes, names in parts:
        dropped |= codes < 0
        combined = combined * max(len(names), 1) + np.maximum(codes, 0)
    combined[dropped] = -1
    present, codes = np.unique(combined[~dropped], return_inverse=True)
    out = np.full(len(combined), -1, dtype=np.int64)
    out[~dropped] = codes
    labels = []
    for key in present:
        digits = []
        for _, names in reversed(parts):
            key, digit = divmod(int(key), max(len(names), 1))
            digits.append(names[digit])
        labels.append(INTERSECTION_SEP.join(reversed(digits)))
    return Groups(attribute, out, labels)


def patient_codes(patient_ids: np.ndarray | Sequence[object] | None, n: int) -> np.ndarray:
    """Integer patient code per row (each row its own patient when ``patient_ids`` is None)."""
    if patient_ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(patient_ids)
    if len(ids) != n:
        raise DataError(f"patient_ids has {len(ids)} rows, expected {n}")
    codes, _ = pd.factorize(pd.Series(ids), use_na_sentinel=False)
    return codes.astype(np.int64)


def restrict(groups: Groups, keep: np.ndarray) -> Groups:
    """Only the groups flagged in ``keep`` (boolean per group); other rows get code ``-1``."""
    keep = np.asarray(keep, dtype=bool)
    remap = np.full(groups.n_groups, -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    codes = np.where(groups.codes >= 0, remap[np.maximum(groups.codes, 0)], -1)
    return Groups(
        groups.attribute, codes, [n for n, k in zip(groups.names, keep, strict=True) if k]
    )
