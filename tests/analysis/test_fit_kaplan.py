"""Kaplan et al. 2020 fits: L(N, D) (eq. 1.5) and the one-variable laws, on log loss."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import InputError
from analysis.fit import KaplanFit, load_fit
from analysis.laws import KAPLAN_2020_ND, KaplanLawN


def grid_data(noise=0.003, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e6, 1e9, 8), 8)
    D = np.tile(np.geomspace(1e7, 1e11, 8), 8)
    return N, D, KAPLAN_2020_ND(N, D) * np.exp(rng.normal(0.0, noise, N.shape))


def test_recovers_a_synthetic_kaplan_nd_law():
    N, D, loss = grid_data()
    fit = KaplanFit().fit(N, D, loss)
    assert fit.form_ == "nd"                              # N and D vary independently
    assert fit.alpha_N_ == pytest.approx(0.076, rel=0.03)
    assert fit.alpha_D_ == pytest.approx(0.103, rel=0.03)
    assert np.log(fit.N_c_) == pytest.approx(np.log(6.4e13), abs=0.3)     # within ~35% on a 1e13 scale
    assert np.log(fit.D_c_) == pytest.approx(np.log(1.8e13), abs=0.3)
    np.testing.assert_allclose(fit.predict(N, D), KAPLAN_2020_ND(N, D), rtol=3e-3)
    assert fit.rss_ < 2 * len(N) * 0.003**2


def test_one_variable_forms_are_exact_on_noise_free_data():
    N = np.geomspace(1e6, 1e10, 7)
    law = KaplanLawN(alpha_N=0.076, N_c=8.8e13)
    fit = KaplanFit(form="n").fit(N, 20 * N, law(N))
    assert fit.alpha_N_ == pytest.approx(0.076, rel=1e-9)
    assert fit.N_c_ == pytest.approx(8.8e13, rel=1e-6)
    assert fit.predict(1e12) == pytest.approx(law(1e12))
    # D proportional to N: the design cannot separate N from D, so the automatic form is L(N)
    assert KaplanFit().fit(N, 20 * N, law(N)).form_ == "n"
    fit_c = KaplanFit(form="c").fit(N, 20 * N, law(N))
    assert fit_c.alpha_C_ == pytest.approx(0.076 / 2, rel=1e-9)         # C = 120 N^2
    with pytest.raises(ValueError, match="needs N"):
        fit.predict(D=1e9)


def test_bootstrap_intervals_and_json_round_trip(tmp_path):
    N, D, loss = grid_data(seed=1)
    fit = KaplanFit(bootstrap=40, random_state=0).fit(N, D, loss)
    for k in ("alpha_N", "alpha_D", "N_c", "D_c"):
        lo, hi = fit.intervals_[k]
        assert lo <= getattr(fit, f"{k}_") <= hi
    d = fit.to_dict()
    assert d["approach"] == "kaplan" and {"alpha_N", "N_c", "alpha_D", "D_c"} <= set(d)
    fit.to_json(tmp_path / "k.json")
    back = load_fit(tmp_path / "k.json")
    assert isinstance(back, KaplanFit) and back.form_ == "nd"
    np.testing.assert_allclose(back.predict(N, D), fit.predict(N, D), rtol=1e-12)
    assert back.intervals_["alpha_N"] == pytest.approx(fit.intervals_["alpha_N"])


def test_too_few_points_for_the_form():
    with pytest.raises(InputError, match="too few for the 4 parameters"):
        KaplanFit(form="nd").fit([1e6, 1e7, 1e8, 1e9], [1e8, 1e7, 1e9, 1e10], [4.0, 3.8, 3.2, 3.0])
