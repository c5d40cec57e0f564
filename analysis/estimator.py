"""What every fitter shares: scikit-learn's estimator shape, JSON round trips, percentile intervals.

A fitter keeps its settings (keyword-only constructor arguments, stored as given and nothing else),
`fit(...)` returns self, and fitted values end in `_`. `to_dict()` gives the fit JSON (CONTRACTS.md),
`from_dict()` rebuilds a fitted estimator from it, and `analysis.fit.load_fit` picks the class.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analysis.io import Points
from analysis.jsonable import to_jsonable


class NotFittedError(ValueError, AttributeError):
    """A fitted value was asked for before `fit` (same bases as scikit-learn's)."""


class FitEstimator:
    """Base class: get_params/set_params, repr, the fitted check and the common JSON fields."""

    approach: ClassVar[int | str]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor settings, by name (scikit-learn protocol)."""
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.kind is p.KEYWORD_ONLY]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> "FitEstimator":
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no setting {name!r} (settings: {sorted(valid)})")
            setattr(self, name, value)
        return self

    def clone(self) -> "FitEstimator":
        """A fresh, unfitted estimator with the same settings."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
                    if p.kind is p.KEYWORD_ONLY}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_points_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(...) first")

    def _set_data_info(self, pts: Points) -> None:
        self.n_points_ = len(pts)
        self.data_range_ = pts.data_range()
        self.source_ = pts.describe()
        self.columns_ = dict(pts.columns)
        self.n_convention_ = pts.n_convention
        self.flops_convention_ = pts.flops_convention

    def _data_info(self) -> dict[str, Any]:
        return {"n_points": self.n_points_, "n_convention": self.n_convention_,
                "flops_convention": self.flops_convention_, "data_range": self.data_range_,
                "source": self.source_, "columns": self.columns_}

    def _read_data_info(self, d: dict[str, Any]) -> None:
        self.n_points_ = int(d.get("n_points", 0))
        self.data_range_ = d.get("data_range", {})
        self.source_ = d.get("source", "")
        self.columns_ = d.get("columns", {})
        self.n_convention_ = d.get("n_convention", "total")
        self.flops_convention_ = d.get("flops_convention", "6ND")

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def to_json(self, path: str | Path | None = None) -> str:
        """The fit JSON as text; also written to `path` when one is given."""
        text = json.dumps(to_jsonable(self.to_dict()), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text


def percentile_interval(samples: np.ndarray, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the (1 - level)/2 and (1 + level)/2 quantiles of `samples`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie in (0, 1), got {level}")
    q = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=axis)
    return q[0], q[1]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
