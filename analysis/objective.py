"""The approach-3 objective and a batched optimiser that minimises it from thousands of starts at once.

Hoffmann et al. 2022 (eq. 11) fit L(N, D) = E + A/N^alpha + B/D^beta in log-sum-exp form

    log L_hat(theta) = LSE(a - alpha log N,  b - beta log D,  e),   theta = (a, b, e, alpha, beta),
    A = e^a, B = e^b, E = e^e,

by minimising the Huber loss of the log residuals r_i = log L_hat_i - log L_i with delta = 1e-3,

    f(theta) = sum_i w_i Huber_delta(r_i),   Huber_delta(r) = r^2/2 if |r| <= delta else delta (|r| - delta/2).

The sum (not the mean) matters: Besiroglu et al. 2024 (arXiv:2404.10102) show the mean-scaled
objective has gradients ~n times smaller, so L-BFGS stops at its default tolerance before the optimum.

`minimize_batched` runs one damped Gauss-Newton (Levenberg-Marquardt) iteration on every start at
once in numpy. The Huber loss enters through iteratively reweighted least squares: at residual r the
quadratic q(r') = Huber(r) + psi(r)/(2r) (r'^2 - r^2), psi = Huber', touches Huber at r and lies above
it, so J^T diag(w psi(r)/r) J is a safe curvature model (psi(r)/r = min(1, delta/|r|)) and
J^T (w psi(r)) is the exact gradient. A step is kept only where it lowers f; each start has its own
damping. A fixed point has zero gradient, so what survives is a stationary point of the real objective;
the estimators then polish the best few with scipy's L-BFGS-B at tight tolerances.

Speed: problems are evaluated in blocks of ~32k (problem, point) pairs so temporaries stay in cache,
contractions over points are BLAS matrix-vector products (fast at any thread count, unlike tiny
matrix-matrix products under a busy multi-threaded OpenBLAS), and the exploratory pass runs in
float32 (exp/log ~3x cheaper; terms floored so no subnormal numbers appear). On Epoch's 240 points
the 4,500 starts take ~2.3 s of one core against ~54 s for a per-start scipy L-BFGS-B loop
(`benchmarks/bench_fit.py`).
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

PARAM_NAMES = ("a", "b", "e", "alpha", "beta")
"""Order of the entries of theta: log A, log B, log E, alpha, beta."""

CHINCHILLA_GRID = {
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}
"""Hoffmann et al. 2022 App. D.2 initialisation grid: 6 * 6 * 5 * 5 * 5 = 4,500 starts."""

_BLOCK_ELEMENTS = 32_768  # problems x points per block: keeps the (block, n) temporaries in cache and
                          # below malloc's mmap threshold (measured: 128 x 240 points beats 512 x 240 2-4x)


def start_grid(grid: dict[str, tuple[float, ...]] | None = None) -> np.ndarray:
    """All combinations of a grid of starting values, shape (n_starts, 5) in PARAM_NAMES order."""
    grid = CHINCHILLA_GRID if grid is None else grid
    missing = [k for k in PARAM_NAMES if k not in grid]
    if missing:
        raise ValueError(f"init grid lacks {missing}; it needs values for {list(PARAM_NAMES)}")
    return np.array(list(itertools.product(*(np.atleast_1d(grid[k]) for k in PARAM_NAMES))), dtype=float)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber_delta(r) = r^2/2 for |r| <= delta, delta (|r| - delta/2) beyond (same as scipy.special.huber)."""
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def predict_log_loss(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray) -> np.ndarray:
    """log L_hat = LSE(a - alpha log N, b - beta log D, e); theta (5,) -> (n,), or (P, 5) -> (P, n)."""
    th = np.asarray(theta, dtype=float)
    a, b, e, alpha, beta = (th[..., i, None] for i in range(5))
    return np.logaddexp(np.logaddexp(a - alpha * logN, b - beta * logD), e + 0 * logN)


def objective_and_grad(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
                       delta: float = 1e-3, weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """f(theta) and its exact gradient for one theta (5,): the function scipy.optimize.minimize sees."""
    f, g, _ = _block(np.asarray(theta, dtype=float)[None, :], _Data(logN, logD, logL, np.float64), delta,
                     None if weights is None else np.asarray(weights, dtype=float)[None, :], jac=True)
    return float(f[0]), g[0]


def evaluate_batched(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
                     delta: float = 1e-3, weights: np.ndarray | None = None, jac: bool = False,
                     dtype: type = np.float64) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f for every row of theta (P, 5); with `jac`, also gradients (P, 5) and IRLS curvatures (P, 5, 5).

    `weights` is None (every point counts once), (n,) shared, or (P, n): one row of point weights per
    problem (a bootstrap resample is the row of counts of each point); `logN` may be a prepared
    `_Data` (then logD and logL are ignored). `dtype=np.float32` does the
    per-point arithmetic in single precision (about 3x faster exp/log; residuals good to ~1e-7, so
    objective differences below ~1e-6 relative are noise); the results are float64 either way.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    P = theta.shape[0]
    if weights is not None:
        weights = np.asarray(weights, dtype=dtype)
        if weights.ndim == 1:
            weights = np.broadcast_to(weights, (P, weights.shape[0]))
    data = logN if isinstance(logN, _Data) else _Data(logN, logD, logL, dtype)
    outs = []
    chunk = max(8, _BLOCK_ELEMENTS // max(1, data.x.shape[0]))
    for lo in range(0, P, chunk):
        hi = min(P, lo + chunk)
        outs.append(_block(theta[lo:hi], data, delta, None if weights is None else weights[lo:hi], jac))
    if not jac:
        return np.concatenate(outs)
    return tuple(np.concatenate(parts) for parts in zip(*outs))  # type: ignore[return-value]


class _Data:
    """log N, log D, log L and the products the curvature needs, in the working precision."""

    def __init__(self, logN, logD, logL, dtype):
        self.dtype = dtype
        self.x, self.y, self.t = (np.asarray(v, dtype=dtype) for v in (logN, logD, logL))
        self.xx, self.xy, self.yy = self.x * self.x, self.x * self.y, self.y * self.y
        self._work = np.empty(0, dtype=dtype)

    def workspace(self, P: int, n: int) -> np.ndarray:
        """A reused (9, P, n) scratch array: a fresh one per block costs page faults that dominated
        the curvature (measured 3 ms of 3.4 ms per 128 x 240 block)."""
        if self._work.size < 9 * P * n:
            self._work = np.empty(9 * P * n, dtype=self.dtype)
        return self._work[: 9 * P * n].reshape(9, P, n)


def _block(theta, data: _Data, delta, weights, jac):
    """f (and gradient, IRLS curvature) for a block of problems; see the module docstring.

    Works in the linear domain, L_hat = e^(a - alpha x) + e^(b - beta y) + e^e, which costs two exp
    and one log per point (the max-shifted LSE costs three exp); a term that overflows gives f = inf,
    and such a trial step is simply rejected.
    """
    dt = data.dtype
    a, b, e, alpha, beta = (theta[:, i:i + 1] for i in range(5))
    x, y = data.x, data.y
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        lo = _EXP_FLOOR[dt]
        t1 = alpha.astype(dt) * x
        np.subtract(a.astype(dt), t1, out=t1)
        np.maximum(t1, lo, out=t1)           # no subnormal results: they are 10-100x slower on x86
        np.exp(t1, out=t1)                   # (P, n) A / N^alpha
        t2 = beta.astype(dt) * y
        np.subtract(b.astype(dt), t2, out=t2)
        np.maximum(t2, lo, out=t2)
        np.exp(t2, out=t2)                   # (P, n) B / D^beta
        t3 = np.exp(e).astype(dt)            # (P, 1) E
        L_hat = t1 + t2
        L_hat += t3
        r = np.log(L_hat)
        r -= data.t                          # residuals of log loss
        ar = np.abs(r)
        c = np.minimum(ar, dt(delta))
        h = ar - 0.5 * c
        h *= c                               # Huber_delta(r) = c (|r| - c/2), c = min(|r|, delta)
        if weights is not None:
            h *= weights
        f = h.sum(axis=1).astype(float)     # pairwise summation: float32 is good to ~1e-7 here
        f = np.where(np.isfinite(f), f, np.inf)
        if not jac:
            return f
        P, n = t1.shape
        inv = 1.0 / L_hat
        tiny = _P_FLOOR[dt]                  # weights below it are set to 0 so products stay normal
        p1 = t1 * inv                        # softmax weights: d log L_hat / d(u1, u2, e)
        np.multiply(p1, p1 >= tiny, out=p1)
        p2 = t2 * inv
        np.multiply(p2, p2 >= tiny, out=p2)
        p3 = t3 * inv
        np.multiply(p3, p3 >= tiny, out=p3)
        psi = np.copysign(c, r)              # Huber'(r)
        omega = c / np.maximum(ar, dt(1e-30))  # Huber'(r) / r = min(1, delta / |r|)
        if weights is not None:
            psi *= weights
            omega *= weights
        w1, w2 = omega * p1, omega * p2
        # With J = [p1, p2, p3, -p1 x, -p2 y]: gradient J^T psi and IRLS curvature J^T diag(omega) J
        # need nine per-point products, summed plain or against x, y, x^2, xy, y^2. They are laid out
        # so each contraction is one call on a contiguous slice.
        buf = data.workspace(P, n)
        np.multiply(w1, p1, out=buf[0])      # s11
        np.multiply(w1, p3, out=buf[1])      # s13
        np.multiply(p1, psi, out=buf[2])     # q1
        np.multiply(w1, p2, out=buf[3])      # s12
        np.multiply(w2, p2, out=buf[4])      # s22
        np.multiply(w2, p3, out=buf[5])      # s23
        np.multiply(p2, psi, out=buf[6])     # q2
        np.multiply(omega * p3, p3, out=buf[7])  # s33
        np.multiply(p3, psi, out=buf[8])     # q3
    sums = buf.sum(axis=2).astype(float)                     # (9, P); numpy sums pairwise, so float32 is enough
    on_x = (buf[0:4].reshape(4 * P, n) @ data.x).reshape(4, P).astype(float)   # s11 s13 q1 s12 . x
    on_y = (buf[3:7].reshape(4 * P, n) @ data.y).reshape(4, P).astype(float)   # s12 s22 s23 q2 . y
    s11, s13, q1, s12, s22, s23, q2, s33, q3 = sums
    g = np.empty((P, 5))
    g[:, 0], g[:, 1], g[:, 2], g[:, 3], g[:, 4] = q1, q2, q3, -on_x[2], -on_y[3]
    H = np.empty((P, 5, 5))
    H[:, 0, 0], H[:, 0, 1], H[:, 0, 2], H[:, 0, 3], H[:, 0, 4] = s11, s12, s13, -on_x[0], -on_y[0]
    H[:, 1, 1], H[:, 1, 2], H[:, 1, 3], H[:, 1, 4] = s22, s23, -on_x[3], -on_y[1]
    H[:, 2, 2], H[:, 2, 3], H[:, 2, 4] = s33, -on_x[1], -on_y[2]
    H[:, 3, 3] = buf[0] @ data.xx
    H[:, 3, 4] = buf[3] @ data.xy
    H[:, 4, 4] = buf[4] @ data.yy
    H[:, _LOWER[0], _LOWER[1]] = H[:, _LOWER[1], _LOWER[0]]
    return f, g, H


_LOWER = np.tril_indices(5, -1)
# Floors that keep every intermediate a normal float (subnormal arithmetic is very slow on x86): the
# exponent of a term (its value then differs from 0 by less than 1e-34 relative to any loss), and the
# softmax weights (a weight < 1e-12 changes no gradient that matters; squared it would be subnormal).
_EXP_FLOOR = {np.float32: np.float32(-80.0), np.float64: -700.0}
_P_FLOOR = {np.float32: np.float32(1e-12), np.float64: 1e-150}


def minimize_batched(theta0: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray, *,
                     delta: float = 1e-3, weights: np.ndarray | None = None, max_iter: int = 500,
                     ftol: float = 1e-10, dtype: type = np.float64,
                     on_converged: Callable[[np.ndarray], None] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimise f from every row of theta0 (P, 5) at once; returns (theta, f, n_iter, converged).

    Each problem p takes Levenberg-Marquardt steps (H_p + lam_p diag(H_p)) step = -g_p with the IRLS
    curvature H_p; a step is kept only if it lowers f_p (then lam_p /= 3, else lam_p *= 4). The
    gradient and curvature are computed in the same pass as the trial's f, so an iteration costs one
    evaluation. A problem stops when a kept step lowers f by less than `ftol` relative, or when no step
    helps (lam_p > 1e10). Only unfinished problems are evaluated, so the cost falls as starts converge.
    `on_converged(idx)` is called with the indices of problems that finished (for progress bars).
    """
    theta = np.array(theta0, dtype=float, copy=True)
    P = theta.shape[0]
    W = None
    if weights is not None:
        W = np.asarray(weights, dtype=dtype)
        if W.ndim == 1:
            W = np.broadcast_to(W, (P, W.shape[0]))
    data = _Data(logN, logD, logL, dtype)
    f, g, H = evaluate_batched(theta, data, None, None, delta, W, jac=True, dtype=dtype)
    lam = np.full(P, 1e-3)
    n_iter = np.zeros(P, dtype=int)
    converged = np.zeros(P, dtype=bool)
    active = np.isfinite(f)
    eye = np.eye(5)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Ha = H[idx]
        diag = np.einsum("pkk->pk", Ha)
        damp = lam[idx, None] * (diag + 1e-12 * (1.0 + diag.max(axis=1, keepdims=True)))
        step = _solve(Ha + damp[:, :, None] * eye, -g[idx])
        trial = theta[idx] + step
        f_t, g_t, H_t = evaluate_batched(trial, data, None, None, delta, None if W is None else W[idx],
                                         jac=True, dtype=dtype)
        better = f_t < f[idx]
        kept = idx[better]
        n_iter[idx] += 1
        decrease = (f[kept] - f_t[better]) / np.maximum(f_t[better], 1e-300)
        theta[kept], f[kept], g[kept], H[kept] = trial[better], f_t[better], g_t[better], H_t[better]
        lam[kept] = np.maximum(lam[kept] / 3.0, 1e-12)
        stuck = idx[~better]
        lam[stuck] *= 4.0
        done = np.concatenate([kept[decrease <= ftol], stuck[lam[stuck] > 1e10]])
        if done.size:
            converged[done] = True
            active[done] = False
            if on_converged is not None:
                on_converged(done)
    return theta, f, n_iter, converged


def _solve(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched 5x5 solves; a singular or non-finite system gives a zero step (that problem's damping grows)."""
    with np.errstate(all="ignore"):
        try:
            step = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.zeros_like(rhs)
            for i in range(A.shape[0]):
                try:
                    step[i] = np.linalg.solve(A[i], rhs[i])
                except np.linalg.LinAlgError:
                    pass
    return np.where(np.isfinite(step), step, 0.0)
