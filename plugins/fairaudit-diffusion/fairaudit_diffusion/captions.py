"""Captions built from an audit's metadata (PRISM style) and the prompt pairs of an edit.

A caption is a template filled with one short phrase per *field* (a metadata column):
``"chest x-ray, with pleural effusion, with support devices, ap view, female patient"``.
The label ``y`` is the field ``"label"`` (aliases ``disease``, ``y``, ``target``).
Fields can be dropped independently while fine-tuning, so that the model also learns
partial captions; an edit then only needs the phrase of the factor it changes.
Pure python and pandas: no torch here.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Field names accepted for the same metadata column.
FIELD_ALIASES: dict[str, str] = {
    "disease": "label",
    "y": "label",
    "target": "label",
    "finding": "label",
    "devices": "device",
    "support_device": "device",
    "support_devices": "device",
}

#: Fields used when ``caption_fields`` is not given (those present in the data).
DEFAULT_FIELDS: tuple[str, ...] = ("label", "device", "view", "sex", "age_group")

#: Phrase of each value (``str`` keys, see :func:`value_key`); a string is a ``{value}`` template.
DEFAULT_PHRASES: dict[str, dict[str, str] | str] = {
    "label": {"1": "with {label_name}", "0": "without {label_name}"},
    "device": {"1": "with support devices", "0": "without support devices"},
    "view": {"0": "pa view", "1": "ap view", "PA": "pa view", "AP": "ap view"},
    "sex": {
        "F": "female patient",
        "M": "male patient",
        "female": "female patient",
        "male": "male patient",
    },
    "age_group": "aged {value}",
}

DEFAULT_TEMPLATE = "chest x-ray, {fields}"
_RESERVED = frozenset({"fields", "label_name"})


def canonical_field(name: str) -> str:
    """The field a column or factor name refers to (``"disease"`` -> ``"label"``)."""
    return FIELD_ALIASES.get(name, name)


def value_key(value: Any) -> str | None:
    """A stable string key of a value (``1``, ``1.0``, ``True`` -> ``"1"``); ``None`` if missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(float(value)):
            return None
        return str(int(value)) if float(value).is_integer() else f"{float(value):g}"
    text = str(value).strip()
    return text or None


def template_fields(template: str) -> list[str]:
    """Placeholder names used in ``template``."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    text = re.sub(r"\s+,", ",", text)
    return text.strip(" ,")


@dataclass(frozen=True)
class CaptionBuilder:
    """Builds captions from metadata rows.

    Parameters
    ----------
    fields:
        Metadata fields described by a caption, in order.
    template:
        ``str.format`` template; ``{fields}`` is the comma-joined phrases of every field
        not named in the template; a field name (``{sex}``) inserts that field's phrase.
    label_name:
        Name of the positive finding, used in the ``label`` phrases.
    phrases:
        Overrides of :data:`DEFAULT_PHRASES`, per field.
    """

    fields: tuple[str, ...] = DEFAULT_FIELDS
    template: str = DEFAULT_TEMPLATE
    label_name: str = "disease"
    phrases: Mapping[str, Mapping[str, str] | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [
            n for n in template_fields(self.template) if n not in _RESERVED and n not in self.fields
        ]
        if unknown:
            raise ValueError(
                f"caption_template uses {unknown}, which are not caption fields {list(self.fields)}"
            )

    def phrase(self, field_name: str, value: Any) -> str:
        """The phrase for one field value (empty when the value is missing)."""
        key = value_key(value)
        if key is None:
            return ""
        table = self.phrases.get(field_name, DEFAULT_PHRASES.get(field_name))
        if isinstance(table, Mapping) and key in table:
            pattern = table[key]
        elif isinstance(table, str):
            pattern = table
        else:
            pattern = f"{field_name.replace('_', ' ')} {{value}}"
        return pattern.format(value=key, label_name=self.label_name).strip()

    def caption(self, row: Mapping[str, Any], keep: Collection[str] | None = None) -> str:
        """Caption of one metadata row; only fields in ``keep`` (default: all) are described."""
        named = set(template_fields(self.template))
        values: dict[str, str] = {"label_name": self.label_name}
        rest: list[str] = []
        for name in self.fields:
            text = self.phrase(name, row.get(name)) if (keep is None or name in keep) else ""
            values[name] = text
            if name not in named and text:
                rest.append(text)
        values["fields"] = ", ".join(rest)
        return _tidy(self.template.format_map(values))

    def captions(
        self,
        meta: pd.DataFrame,
        *,
        field_dropout: float = 0.0,
        caption_dropout: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> list[str]:
        """Captions of every row; fields and whole captions dropped at random when asked."""
        rng = rng if rng is not None else np.random.default_rng(0)
        records = meta.to_dict(orient="records")
        out: list[str] = []
        for row in records:
            if caption_dropout > 0 and rng.random() < caption_dropout:
                out.append("")
                continue
            keep = None
            if field_dropout > 0:
                keep = {name for name in self.fields if rng.random() >= field_dropout}
            out.append(self.caption(row, keep))
        return out

    def vocabulary(self) -> list[str]:
        """Words the default phrases and the template can produce (for tiny test tokenizers)."""
        texts = [self.template.replace("{", " ").replace("}", " "), self.label_name]
        for table in DEFAULT_PHRASES.values():
            texts.extend(table.values() if isinstance(table, Mapping) else [table])
        return sorted(set(re.findall(r"[a-z]+", " ".join(texts).lower())))


def metadata_frame(
    y: np.ndarray | None,
    sensitive: pd.DataFrame | None,
    extras: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per sample: ``label`` (from ``y``), sensitive columns and 1-D extras.

    Column names are mapped through :data:`FIELD_ALIASES` (``disease`` -> ``label``).
    """
    columns: dict[str, Any] = {}
    n: int | None = None
    if sensitive is not None:
        frame = sensitive.reset_index(drop=True)
        n = len(frame)
        for col in frame.columns:
            columns[canonical_field(str(col))] = frame[col].to_numpy(dtype=object)
    for key, arr in (extras or {}).items():
        arr = np.asarray(arr)
        if arr.ndim == 1:
            columns.setdefault(canonical_field(str(key)), arr.astype(object))
            n = len(arr) if n is None else n
    if y is not None:
        y_arr = np.asarray(y)
        columns["label"] = y_arr.astype(object)
        n = len(y_arr) if n is None else n
    return pd.DataFrame(columns, index=pd.RangeIndex(n or 0))


def field_values(meta: pd.DataFrame, fields: Sequence[str]) -> dict[str, list[str]]:
    """Sorted distinct value keys of each field present in ``meta``."""
    out: dict[str, list[str]] = {}
    for name in fields:
        if name in meta.columns:
            keys = {value_key(v) for v in meta[name].tolist()}
            out[name] = sorted(k for k in keys if k is not None)
    return out


def flipped(value: str, known: Sequence[str], field_name: str) -> str:
    """The other value of a binary field."""
    others = [k for k in known if k != value]
    if len(known) != 2 or len(others) != 1:
        raise ValueError(
            f"cannot flip field {field_name!r} with values {list(known)}: "
            "give the edit a 'to' value"
        )
    return others[0]
