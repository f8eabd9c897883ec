"""scikit-learn's parameter protocol (``get_params``/``set_params``/``repr``) without scikit-learn.

Plugins store their keyword parameters unchanged in ``__init__`` (scikit-learn's rule); the names
come from the ``__init__`` signature, as in :mod:`fairaudit.params`. Objects built on
:class:`Parameterized` work with ``sklearn.base.clone`` and ``check_is_fitted`` (scikit-learn is
imported only when it asks for their tags), but importing them does not import scikit-learn,
which costs about a second.
"""

from __future__ import annotations

import inspect
import math
from functools import cache
from typing import Any, Self

__all__ = ["Parameterized", "param_names"]


@cache
def _init_defaults(cls: type) -> dict[str, Any]:
    """``__init__``'s keyword parameters of ``cls`` -> default (``inspect.Parameter.empty`` if none)."""
    init = cls.__init__
    if init is object.__init__:
        return {}
    defaults: dict[str, Any] = {}
    for name, param in inspect.signature(init).parameters.items():
        if name == "self" or param.kind is param.VAR_KEYWORD:
            continue
        if param.kind is param.VAR_POSITIONAL:
            raise TypeError(f"{cls.__name__}.__init__ takes *{name}: plugin parameters must be named "
                            "keywords (scikit-learn's convention)")
        defaults[name] = param.default
    return defaults


def param_names(cls: type) -> list[str]:
    """Sorted names of the parameters of ``cls`` (its ``__init__`` keywords)."""
    return sorted(_init_defaults(cls))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _differs(value: Any, default: Any) -> bool:
    """Whether ``value`` is not the default (compared by ``repr``, so arrays and NaN are safe)."""
    if default is inspect.Parameter.empty:
        return True
    if type(value) is not type(default) and hasattr(value, "get_params"):
        return True
    return repr(value) != repr(default) and not (_is_nan(value) and _is_nan(default))


class Parameterized:
    """Mixin: parameters are the ``__init__`` keywords, stored as attributes of the same name."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameter name -> value; with ``deep``, also ``name__sub`` of nested estimators."""
        out: dict[str, Any] = {}
        for name in param_names(type(self)):
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set parameters (``name__sub`` reaches into a nested estimator); returns ``self``."""
        valid = set(param_names(type(self)))
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {sorted(valid)}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's default estimator tags (``check_is_fitted`` asks for them since 1.6)."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    def __repr__(self) -> str:
        """``Name(param=value, ...)`` with the parameters that differ from their defaults."""
        defaults = _init_defaults(type(self))
        shown = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items() if _differs(v, defaults[k])]
        return f"{type(self).__name__}({', '.join(shown)})"
