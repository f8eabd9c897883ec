"""Our get_params/set_params/repr behave as scikit-learn's BaseEstimator (the reference) does."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from fairaudit.base import BaseDebiaser
from fairaudit.estimator import Parameterized, param_names


def _pair(base: type) -> tuple[type, type]:
    """The same two-level plugin class built on ``base`` (ours or scikit-learn's)."""

    class Inner(base):
        def __init__(self, alpha: float = 1.0, tags: tuple[str, ...] = ()):
            self.alpha = alpha
            self.tags = tags

    class Outer(base):
        def __init__(self, inner: object = None, lr: float = 1e-3, layers: list[int] | None = None,
                     nan: float = math.nan, name_: str = "x", **extra: object):
            self.inner = inner
            self.lr = lr
            self.layers = layers
            self.nan = nan
            self.name_ = name_

    return Inner, Outer


OURS, THEIRS = _pair(Parameterized), _pair(BaseEstimator)


def _build(classes: tuple[type, type], **kw: object) -> object:
    inner, outer = classes
    return outer(inner=inner(alpha=2.0), **kw)


@pytest.mark.parametrize("kw", [{}, {"lr": 0.5, "layers": [3, 4]}, {"nan": 1.0, "name_": "y"}])
def test_get_params_and_repr_equal_sklearn(kw: dict[str, object]) -> None:
    ours, theirs = _build(OURS, **kw), _build(THEIRS, **kw)
    for deep in (False, True):
        a, b = ours.get_params(deep=deep), theirs.get_params(deep=deep)
        assert list(a) == list(b)
        assert {k: v for k, v in a.items() if k != "inner"} == {k: v for k, v in b.items() if k != "inner"}
    assert repr(ours) == repr(theirs)


def test_set_params_equal_sklearn_including_nested_and_errors() -> None:
    ours, theirs = _build(OURS), _build(THEIRS)
    for est in (ours, theirs):
        assert est.set_params(lr=0.2, inner__alpha=5.0, inner__tags=("a",)) is est
    assert ours.lr == theirs.lr == 0.2
    assert ours.inner.alpha == theirs.inner.alpha == 5.0 and ours.inner.tags == ("a",)
    for est in (ours, theirs):
        with pytest.raises(ValueError, match=r"[Ii]nvalid parameter 'bogus'"):
            est.set_params(bogus=1)


def test_sklearn_clone_and_check_is_fitted_work_on_plugins() -> None:
    class Shift(BaseDebiaser):
        name = "shift_test"

        def __init__(self, amount: float = 1.0, attributes: list[str] | None = None):
            self.amount = amount
            self.attributes = attributes

        def fit(self, X, y, *, sensitive_features):
            self.mean_ = np.mean(X, axis=0)
            return self

        def transform(self, X):
            return X - self.mean_ + self.amount

    with pytest.raises(NotFittedError):
        check_is_fitted(Shift())
    est = Shift(amount=2.0, attributes=["sex"]).fit(np.ones((4, 2)), np.zeros(4), sensitive_features=None)
    check_is_fitted(est)
    twin = clone(est)
    assert twin is not est and twin.get_params() == {"amount": 2.0, "attributes": ["sex"]}
    assert twin.attributes is not est.attributes  # clone copies parameter values
    assert not hasattr(twin, "mean_")
    assert repr(twin) == "Shift(amount=2.0, attributes=['sex'])"


def test_positional_varargs_are_refused() -> None:
    class Bad(Parameterized):
        def __init__(self, *layers: int):
            self.layers = layers

    with pytest.raises(TypeError, match=r"takes \*layers"):
        param_names(Bad)


def test_no_init_means_no_parameters() -> None:
    assert Parameterized().get_params() == {} and repr(Parameterized()) == "Parameterized()"
