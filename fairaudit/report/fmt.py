"""Display formatting for reports: numbers, confidence intervals, p-values, metric names."""

from __future__ import annotations

import math
import re
from typing import Any

#: Display names of metrics whose title-cased name reads badly.
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "roc_auc_difference": "ROC AUC difference",
    "auc_difference": "AUC difference",
    "average_precision": "Average precision",
    "brier_score": "Brier score",
    "expected_calibration_error": "Expected calibration error (ECE)",
    "tpr": "True positive rate (sensitivity)",
    "fpr": "False positive rate",
    "tnr": "True negative rate (specificity)",
    "fnr": "False negative rate",
    "ppv": "Positive predictive value",
    "npv": "Negative predictive value",
    "equal_opportunity_difference": "Equal opportunity difference (TPR gap)",
    "equalized_odds_difference": "Equalized odds difference",
    "demographic_parity_difference": "Demographic parity difference",
    "attribute_probe_auc": "Attribute probe AUC",
    "attack_probe_auc": "Attack probe AUC",
    "bias_attack_eod": "Bias-attack EOD",
    "roc_curve": "ROC curves",
    "calibration_curve": "Calibration curves",
}

#: Short names of key figures in the comparison of arms.
SHORT_LABELS = {
    "roc_auc": "Task AUC",
    "worst_group_auc": "Worst-group AUC",
    "equal_opportunity_difference": "EOD",
}

_ACRONYMS = {"auc", "roc", "tpr", "fpr", "tnr", "fnr", "ppv", "npv", "eod", "ece", "ci", "cf"}


def metric_label(name: str, label: str | None = None) -> str:
    """Human-readable name of a metric (the result's own ``label`` wins)."""
    if label:
        return label
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    words = re.split(r"[_\s]+", name.strip())
    out = [w.upper() if w.lower() in _ACRONYMS else w for w in words if w]
    if not out:
        return name
    first = out[0] if out[0].isupper() else out[0].capitalize()
    return " ".join([first, *out[1:]])


def short_label(result: Any) -> str:
    """The short name of a result in the comparison of arms (its own label when there is none)."""
    return SHORT_LABELS.get(result.metric) or metric_label(result.metric, result.label)


def is_finite(value: Any) -> bool:
    """``True`` for a real, finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def num(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals (thousands separated when large); missing -> ``–``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        text = f"{value:.{digits}f}"
        if text.startswith("-") and float(text) == 0:
            text = text[1:]
        return text.replace("-", "−")
    return str(value)


def ci(low: Any, high: Any, digits: int = 3) -> str:
    """``[low, high]`` or an empty string when either end is missing."""
    if not (is_finite(low) and is_finite(high)):
        return ""
    return f"[{num(float(low), digits)}, {num(float(high), digits)}]"


def pval(value: Any) -> str:
    """A p-value: ``<0.001`` below a thousandth, else three decimals."""
    if not is_finite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def cell(value: Any) -> str:
    """A plugin-provided table cell: floats rounded, everything else as text."""
    if isinstance(value, float):
        return num(value, 4 if abs(value) < 1 else 3)
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def param_value(value: Any) -> str:
    """A plugin parameter for the methods table (compact, one line)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={param_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(param_value(v) for v in value) + "]"
    return str(value)


def slug(text: str, max_len: int = 40) -> str:
    """A file-name and id safe version of ``text`` (ASCII letters, digits, ``-``)."""
    out = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return out[:max_len] or "x"
