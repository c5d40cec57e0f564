"""Approach 3: the objective, the batched optimiser, Epoch's refit, the bootstrap and its coverage."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad

from analysis.bootstrap import bootstrap_theta, resample_counts
from analysis.errors import InputError
from analysis.fit import ChinchillaFit, NotFittedError, load_fit
from analysis.io import FitWarning, load_points
from analysis.laws import ChinchillaLaw
from analysis.objective import (
    CHINCHILLA_GRID,
    evaluate_batched,
    huber,
    minimize_batched,
    objective_and_grad,
    predict_log_loss,
    start_grid,
)

TRUTH = ChinchillaLaw(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.36)
SMALL_GRID = {"a": (0.0, 10.0), "b": (0.0, 10.0), "e": (-1.0, 0.5), "alpha": (0.2, 0.6), "beta": (0.2, 0.6)}
EPOCH = {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}


def synthetic(rng: np.random.Generator, noise: float = 0.01):
    """48 runs: 8 sizes 2e7-5e9 x 6 token/param ratios 4-100, log-normal noise on the loss."""
    Ns = np.geomspace(2e7, 5e9, 8)
    ratios = np.geomspace(4, 100, 6)
    N = np.repeat(Ns, len(ratios))
    D = N * np.tile(ratios, len(Ns))
    return N, D, TRUTH(N, D) * np.exp(rng.normal(0.0, noise, N.shape))


def logs(N, D, loss):
    return np.log(N), np.log(D), np.log(loss)


# ------------------------------------------------------------------------------------------- objective

def test_huber_is_quadratic_inside_delta_and_linear_outside():
    r = np.array([-0.01, -1e-3, 0.0, 5e-4, 0.02])
    np.testing.assert_allclose(huber(r, 1e-3), [1e-3 * (0.01 - 5e-4), 5e-7, 0.0, 1.25e-7, 1e-3 * (0.02 - 5e-4)])


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y, t = logs(*synthetic(rng))
    w = rng.integers(0, 3, x.shape).astype(float)
    for theta in (np.array([6.0, 7.0, 0.5, 0.3, 0.35]), np.array([10.0, 2.0, -1.0, 0.6, 0.1])):
        for weights in (None, w):
            fun = lambda th: objective_and_grad(th, x, y, t, 1e-3, weights)[0]       # noqa: E731
            grad = lambda th: objective_and_grad(th, x, y, t, 1e-3, weights)[1]      # noqa: E731
            scale = np.linalg.norm(grad(theta))
            assert check_grad(fun, grad, theta, epsilon=1e-7) < 1e-4 * scale + 1e-9


def test_batched_evaluation_agrees_with_the_formula_in_both_precisions():
    rng = np.random.default_rng(1)
    N, D, loss = synthetic(rng)
    x, y, t = logs(N, D, loss)
    thetas = start_grid(SMALL_GRID)
    direct = huber(predict_log_loss(thetas, x, y) - t, 1e-3).sum(axis=1)
    f64, g, H = evaluate_batched(thetas, x, y, t, jac=True)
    np.testing.assert_allclose(f64, direct, rtol=1e-10)
    f32 = evaluate_batched(thetas, x, y, t, dtype=np.float32)
    np.testing.assert_allclose(f32, direct, rtol=1e-4)
    # curvature: J^T diag(min(1, delta/|r|)) J with the Jacobian of the log-sum-exp
    th = thetas[3]
    u = np.stack([th[0] - th[3] * x, th[1] - th[4] * y, np.full_like(x, th[2])])
    p = np.exp(u - u.max(0))
    p /= p.sum(0)
    J = np.stack([p[0], p[1], p[2], -p[0] * x, -p[1] * y], axis=1)
    r = predict_log_loss(th, x, y) - t
    omega = np.minimum(1.0, 1e-3 / np.abs(r))
    np.testing.assert_allclose(H[3], J.T @ (omega[:, None] * J), rtol=1e-9)
    np.testing.assert_allclose(g[3], J.T @ np.clip(r, -1e-3, 1e-3), rtol=1e-9)


def test_batched_optimiser_reaches_stationary_points_and_never_increases_f():
    rng = np.random.default_rng(2)
    x, y, t = logs(*synthetic(rng))
    starts = start_grid(SMALL_GRID)
    f0 = evaluate_batched(starts, x, y, t)
    theta, f, n_iter, converged = minimize_batched(starts, x, y, t, ftol=1e-12)
    assert np.all(f <= f0)
    best = np.argmin(f)
    _, grad = objective_and_grad(theta[best], x, y, t)
    _, grad0 = objective_and_grad(starts[best], x, y, t)
    assert np.linalg.norm(grad) < 1e-4 * np.linalg.norm(grad0)
    assert converged.mean() > 0.9 and n_iter.max() <= 500


def test_default_grid_is_chinchillas_4500_starts():
    grid = start_grid()
    assert grid.shape == (4500, 5)
    assert sorted(set(grid[:, 3])) == list(CHINCHILLA_GRID["alpha"])
    assert sorted(set(grid[:, 0])) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]


# ------------------------------------------------------------------------------------------- Epoch's data

@pytest.fixture(scope="module")
def epoch_fit(shared_data):
    pts = load_points(shared_data / "chinchilla_epoch.csv", n_col="Model Size", c_col="Training FLOP",
                      loss_col="loss", drop_highest=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return ChinchillaFit(bootstrap=300, random_state=0).fit(pts)


def test_epoch_sum_huber_optimum_is_reproduced(epoch_fit):
    fit = epoch_fit
    assert fit.n_points_ == 240 and fit.n_starts_ == 4500
    for k in ("E", "alpha", "beta"):
        assert getattr(fit, f"{k}_") == pytest.approx(EPOCH[k], rel=5e-3), k
    for k in ("A", "B"):
        assert getattr(fit, f"{k}_") == pytest.approx(EPOCH[k], rel=2e-2), k
    assert fit.objective_ == pytest.approx(0.00101827, rel=1e-5)      # Epoch's sum-Huber minimum
    assert fit.n_starts_at_optimum_ > 100                              # many grid starts agree
    assert fit.n_convention_ == "total" and fit.columns_["n"] == "Model Size"


def test_epoch_bootstrap_intervals_overlap_epochs(epoch_fit):
    iv = epoch_fit.intervals_
    for k, (lo, hi) in {"alpha": (0.317, 0.373), "beta": (0.331, 0.415), "E": (1.769, 1.871)}.items():
        assert iv[k][0] < hi and lo < iv[k][1], (k, iv[k])
        assert iv[k][0] < getattr(epoch_fit, f"{k}_") < iv[k][1]
    assert epoch_fit.a_ == pytest.approx(0.513, abs=0.01)
    assert np.median(epoch_fit._bootstrap_samples()["a"]) == pytest.approx(0.513, abs=0.02)
    assert iv["a"][0] < 0.513 < iv["a"][1]


# ------------------------------------------------------------------------------------------- synthetic data

def test_recovers_known_parameters_from_noisy_synthetic_data():
    rng = np.random.default_rng(3)
    N, D, loss = synthetic(rng, noise=0.002)
    fit = ChinchillaFit(init_grid=SMALL_GRID).fit(N, D, loss)
    for k in ("E", "alpha", "beta"):
        assert getattr(fit, f"{k}_") == pytest.approx(getattr(TRUTH, k), rel=0.03), k
    for k in ("A", "B"):
        assert getattr(fit, f"{k}_") == pytest.approx(getattr(TRUTH, k), rel=0.3), k
    assert fit.a_ == pytest.approx(TRUTH.a, abs=0.01)
    # the loss surface itself is recovered to well under the noise
    np.testing.assert_allclose(fit.predict(N, D), TRUTH(N, D), rtol=2e-3)


@pytest.mark.slow
def test_bootstrap_95_intervals_cover_the_truth_in_at_least_90_percent_of_100_replicates():
    rng = np.random.default_rng(12345)
    names = ("E", "A", "B", "alpha", "beta", "a", "b")
    hits = dict.fromkeys(names, 0)
    replicates = 100
    for r in range(replicates):
        N, D, loss = synthetic(rng, noise=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            fit = ChinchillaFit(init_grid=SMALL_GRID, bootstrap=200, bootstrap_starts=0, n_refine=8,
                                max_iter=100, random_state=r).fit(N, D, loss)
        for k in names:
            lo, hi = fit.intervals_[k]
            hits[k] += lo <= getattr(TRUTH, k) <= hi
    coverage = {k: v / replicates for k, v in hits.items()}
    assert all(c >= 0.90 for c in coverage.values()), coverage


def test_batched_bootstrap_finds_the_optima_of_independent_multistart_fits():
    rng = np.random.default_rng(4)
    N, D, loss = synthetic(rng)
    x, y, t = logs(N, D, loss)
    full = ChinchillaFit(init_grid=SMALL_GRID).fit(N, D, loss)
    counts = resample_counts(len(N), 4, np.random.default_rng(5))
    starts = np.vstack([full.theta_, start_grid(SMALL_GRID)[:2]])
    theta_b, f_b = bootstrap_theta(starts, x, y, t, counts)
    grid3 = {k: np.linspace(min(v), max(v) * 1.5 + 0.2, 3) for k, v in SMALL_GRID.items()}   # 243 other starts
    for i in range(len(counts)):
        indep = ChinchillaFit(init_grid=grid3).fit(N, D, loss, sample_weight=counts[i])
        assert f_b[i] <= indep.objective_ * (1 + 1e-6)
        np.testing.assert_allclose(theta_b[i][3:], indep.theta_[3:], atol=2e-3)   # alpha, beta
        np.testing.assert_allclose(np.exp(theta_b[i][2]), indep.E_, rtol=1e-3)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(6)
    N, D, loss = synthetic(rng)
    kw = dict(init_grid=SMALL_GRID, bootstrap=40, bootstrap_starts=0, n_refine=4)
    a = ChinchillaFit(random_state=7, **kw).fit(N, D, loss)
    b = ChinchillaFit(random_state=7, **kw).fit(N, D, loss)
    c = ChinchillaFit(random_state=8, **kw).fit(N, D, loss)
    assert a.intervals_ == b.intervals_
    assert a.intervals_ != c.intervals_


def test_integer_sample_weights_equal_duplicated_rows():
    rng = np.random.default_rng(9)
    N, D, loss = synthetic(rng)
    w = rng.integers(1, 3, N.shape)
    weighted = ChinchillaFit(init_grid=SMALL_GRID).fit(N, D, loss, sample_weight=w)
    idx = np.repeat(np.arange(len(N)), w)
    duplicated = ChinchillaFit(init_grid=SMALL_GRID).fit(N[idx], D[idx], loss[idx])
    assert weighted.objective_ == pytest.approx(duplicated.objective_, rel=1e-8)
    np.testing.assert_allclose(weighted.theta_, duplicated.theta_, atol=1e-4)


# ------------------------------------------------------------------------------------------- estimator contract

@pytest.fixture(scope="module")
def small_boot_fit():
    N, D, loss = synthetic(np.random.default_rng(10))
    return ChinchillaFit(init_grid=SMALL_GRID, bootstrap=50, bootstrap_starts=2, random_state=0).fit(N, D, loss), (N, D, loss)


def test_constructor_only_stores_settings_and_fit_returns_self():
    est = ChinchillaFit(delta=1e-3, init_grid=SMALL_GRID, bootstrap=0)
    assert est.get_params()["init_grid"] is SMALL_GRID
    assert not [k for k in vars(est) if k.endswith("_")]
    with pytest.raises(NotFittedError, match="not fitted"):
        est.predict(1e9, 2e10)
    N, D, loss = synthetic(np.random.default_rng(11))
    params_before = dict(est.get_params())
    assert est.fit(N, D, loss) is est
    assert est.get_params() == params_before
    assert est.clone().get_params() == params_before
    assert "init_grid" in repr(est)
    with pytest.raises(NotFittedError, match="bootstrap"):
        est.predict(1e9, 2e10, interval=0.95)


def test_fit_accepts_a_dataframe_with_a_column_map_and_flops_only():
    import pandas as pd

    N, D, loss = synthetic(np.random.default_rng(12))
    df = pd.DataFrame({"Model Size": N, "Training FLOP": 6 * N * D, "loss": loss})
    a = ChinchillaFit(init_grid=SMALL_GRID).fit(df, columns={"n": "Model Size", "c": "Training FLOP", "loss": "loss"})
    b = ChinchillaFit(init_grid=SMALL_GRID).fit(N, loss=loss, C=6 * N * D)
    c = ChinchillaFit(init_grid=SMALL_GRID).fit(N, D, loss)
    assert a.objective_ == pytest.approx(c.objective_, rel=1e-9)
    assert b.objective_ == pytest.approx(c.objective_, rel=1e-9)
    assert a.n_convention_ == "total" == c.n_convention_ and a.columns_["n"] == "Model Size"


def test_prediction_and_frontier_intervals(small_boot_fit):
    fit, (N, D, loss) = small_boot_fit
    mid, lo, hi = fit.predict(N[:5], D[:5], interval=0.9)
    assert mid.shape == lo.shape == hi.shape == (5,)
    assert np.all(lo <= mid) and np.all(mid <= hi) and np.all(hi - lo > 0)
    m0, l0, h0 = fit.predict(1e12, 2e13, interval=0.95)
    assert l0 < m0 < h0 and (h0 - l0) > (hi - lo).mean()          # wider far out of the data
    (Nm, Nl, Nh), (Dm, Dl, Dh) = fit.compute_optimal(1e24, interval=0.95)
    assert Nl < Nm < Nh and Dl < Dm < Dh
    assert 6 * Nm * Dm == pytest.approx(1e24)
    assert len(fit.bootstrap_laws()) == 50
    for k in ("E", "A", "B", "alpha", "beta", "a", "b", "G"):
        lo_k, hi_k = fit.intervals_[k]
        assert lo_k <= hi_k


def test_fit_json_round_trip(small_boot_fit, tmp_path):
    fit, (N, D, _) = small_boot_fit
    d = fit.to_dict()
    for key in ("approach", "law", "E", "A", "B", "alpha", "beta", "a", "b", "G", "n_points", "objective", "delta",
                "n_convention", "flops_convention", "intervals", "interval_level", "bootstrap", "data_range", "source"):
        assert key in d, key
    assert d["approach"] == 3 and d["law"] == "chinchilla" and d["flops_convention"] == "6ND"
    assert set(d["intervals"]) == {"E", "A", "B", "alpha", "beta", "a", "b", "G"}
    assert set(d["bootstrap"]) == {"E", "A", "B", "alpha", "beta"} and len(d["bootstrap"]["E"]) == 50
    assert set(d["data_range"]) == {"N", "D", "C", "loss"}
    path = tmp_path / "fit.json"
    fit.to_json(path)
    back = load_fit(path)
    assert isinstance(back, ChinchillaFit)
    np.testing.assert_allclose(back.predict(N, D), fit.predict(N, D), rtol=1e-12)
    np.testing.assert_allclose(back.predict(N, D, interval=0.9), fit.predict(N, D, interval=0.9), rtol=1e-12)
    for k, (lo, hi) in fit.intervals_.items():
        assert back.intervals_[k] == pytest.approx((lo, hi), rel=1e-12), k
    assert load_fit(json.loads(path.read_text())).to_dict()["E"] == d["E"]


def test_too_few_points_is_an_input_error():
    with pytest.raises(InputError, match=r"4 distinct \(N, D\) points \(of 4 rows\) are fewer than the 5 parameters"):
        ChinchillaFit().fit([1e8, 2e8, 3e8, 4e8], [1e9, 2e9, 3e9, 4e9], [3.0, 2.9, 2.8, 2.7])
    with pytest.raises(InputError, match=r"column 'loss', row 2"):
        ChinchillaFit().fit([1e8, 2e8, 3e8], [1e9, 2e9, 3e9], [3.0, np.nan, 2.8])
    with pytest.raises(InputError, match="no such fit file"):
        load_fit("/nonexistent/fit.json")
