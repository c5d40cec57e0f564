"""What every fitter shares: scikit-learn's estimator shape, the fit JSON's common fields, intervals.

A fitter keeps its settings (keyword-only constructor arguments, stored as given and nothing else),
`fit(...)` returns self, and fitted values end in `_`. `to_dict()` gives the fit JSON and
`from_dict()` rebuilds a fitted estimator from it; `analysis.fitjson` is where the JSON is written
(`write_fit`) and read back (`read_fit`, which picks the class by "approach").

Every fit JSON has, besides the fitter's own fields (`_fields`):

    schema_version   SCHEMA_VERSION, the version of this layout
    approach         1, 2, 3 or "kaplan": which fitter wrote it
    intervals, interval_level, bootstrap   percentile intervals and the draws they came from, when
                     the fit was bootstrapped (bootstrap: parameter name -> list of draws)
    n_points, n_convention (total, nonembedding, or the column N came from), flops_convention (6ND or
    the FLOPs column), data_range ({N, D, C, loss: [min, max]}), source, columns, provenance (eval data and
    tokenizer hashes, checkpoints, LR schedule: `analysis.provenance`)   the data it saw
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from analysis.bootstrap import percentile_interval
from analysis.curves import Curves
from analysis.io import Points, data_range
from contracts import jsonio
from contracts.conventions import FLOPS_6ND

SCHEMA_VERSION = 1
"""The version of the fit JSON's layout; a reader refuses files of a newer one."""


class NotFittedError(ValueError, AttributeError):
    """A fitted value was asked for before `fit` (same bases as scikit-learn's)."""


class FitEstimator:
    """Base class: get_params/set_params, repr, the fitted check, and the fit JSON round trip.

    A subclass defines `approach`, `_fields()` (its own JSON fields) and `_read_fields(d)` (their
    inverse), and `_settings(d)` for constructor settings recorded in the JSON; the common fields,
    the bootstrap draws and intervals are written and read here, once for every fitter.
    """

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

    # ---- the data a fit saw

    def _set_data_info(self, data: Points | Curves, source: str | None = None) -> None:
        self.n_points_ = len(data)
        self.data_range_ = data_range(data)
        self.source_ = source if source is not None else data.describe()
        self.columns_ = dict(data.columns)
        self.n_convention_ = data.n_convention
        self.flops_convention_ = data.flops_convention
        self.provenance_ = dict(getattr(data, "provenance", None) or {})

    def _data_info(self) -> dict[str, Any]:
        return {"n_points": self.n_points_, "n_convention": self.n_convention_,
                "flops_convention": self.flops_convention_, "data_range": self.data_range_,
                "source": self.source_, "columns": self.columns_, "provenance": getattr(self, "provenance_", {})}

    def _read_data_info(self, d: Mapping[str, Any]) -> None:
        self.n_points_ = int(d.get("n_points") or 0)
        self.data_range_ = dict(d.get("data_range") or {})
        self.source_ = str(d.get("source") or "")
        self.columns_ = dict(d.get("columns") or {})
        self.n_convention_ = str(d.get("n_convention") or "total")
        self.flops_convention_ = str(d.get("flops_convention") or FLOPS_6ND)
        self.provenance_ = dict(d.get("provenance") or {})

    # ---- bootstrap draws and their percentile intervals

    def _clear_bootstrap(self) -> None:
        for attr in ("bootstrap_params_", "bootstrap_objective_", "intervals_", "interval_level_"):
            self.__dict__.pop(attr, None)

    def _bootstrap_samples(self) -> dict[str, np.ndarray]:
        """Draws per parameter that get an interval (the bootstrap draws, and any derived from them)."""
        return self.bootstrap_params_

    def _set_intervals(self) -> None:
        self.interval_level_ = float(self.interval_level)
        self.intervals_ = {k: tuple(float(u) for u in percentile_interval(v, self.interval_level_))
                           for k, v in self._bootstrap_samples().items()}

    def _bootstrap_fields(self) -> dict[str, Any]:
        if not hasattr(self, "intervals_"):
            return {}
        d: dict[str, Any] = {"intervals": {k: list(v) for k, v in self.intervals_.items()},
                             "interval_level": self.interval_level_}
        if hasattr(self, "bootstrap_params_"):
            d["bootstrap"] = {k: [float(u) for u in v] for k, v in self.bootstrap_params_.items()}
        return d

    def _read_bootstrap(self, d: Mapping[str, Any]) -> None:
        """The bootstrap draws with their intervals recomputed; or, without draws, the recorded
        intervals (kept, though nothing can be resampled from them)."""
        boot = d.get("bootstrap") or {}
        if boot:
            draws = {k: np.asarray(v, dtype=float) for k, v in boot.items()}
            if len({v.size for v in draws.values()}) > 1:
                raise ValueError("field 'bootstrap': the sample arrays differ in length")
            self.bootstrap_params_ = draws
            self._set_intervals()
        elif d.get("intervals"):
            self.intervals_ = {k: tuple(float(u) for u in v) for k, v in d["intervals"].items()}
            self.interval_level_ = float(self.interval_level)

    # ---- the fit JSON

    def _fields(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _read_fields(self, d: Mapping[str, Any]) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def _settings(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor settings recorded in a fit JSON, besides bootstrap and interval_level."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The fit JSON: schema_version, approach, the fitter's fields, bootstrap, the data it saw."""
        self._check_fitted()
        return {"schema_version": SCHEMA_VERSION, "approach": self.approach, **self._fields(),
                **self._bootstrap_fields(), **self._data_info()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FitEstimator":
        """A fitted estimator from its fit JSON dict. A missing field raises KeyError and a malformed
        one TypeError or ValueError; `analysis.fitjson.read_fit` turns them into one-line errors."""
        n_draws = len(next(iter((d.get("bootstrap") or {}).values()), []))
        est = cls(bootstrap=n_draws, interval_level=float(d.get("interval_level") or 0.95), **cls._settings(d))
        est._read_fields(d)
        est._read_data_info(d)
        est._read_bootstrap(d)
        return est

    def to_json(self, path: str | Path | None = None) -> str:
        """The fit JSON as text; with `path`, also written there atomically (`contracts.jsonio`).
        `analysis.fitjson.write_fit(fit, path)` writes every fit file through this method."""
        text = jsonio.dumps(self.to_dict())
        if path is not None:
            jsonio.write_atomic(path, text)
        return text


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "resample"):
    """A tqdm bar on stderr counting bootstrap resamples (or `unit`s), or None when not `enabled`."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
