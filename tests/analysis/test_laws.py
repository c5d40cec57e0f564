"""The law forms: closed forms agree with brute force, published constants give published numbers."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.laws import (
    CHINCHILLA_PAPER,
    CHINCHILLA_PAPER_UNROUNDED,
    EPOCH_2024,
    KAPLAN_2020_ND,
    ChinchillaLaw,
    KaplanLawC,
    KaplanLawD,
    KaplanLawN,
    KaplanLawND,
    PowerLaw,
)


def test_chinchilla_exponents_match_paper_table_2():
    # Hoffmann et al. 2022 Table 2, approach 3: a = 0.46, b = 0.54 from alpha = 0.34, beta = 0.28
    assert CHINCHILLA_PAPER.a == pytest.approx(0.28 / 0.62)
    assert CHINCHILLA_PAPER.a == pytest.approx(0.46, abs=0.01)
    assert CHINCHILLA_PAPER.b == pytest.approx(0.54, abs=0.01)
    assert CHINCHILLA_PAPER.a + CHINCHILLA_PAPER.b == pytest.approx(1.0)
    # Besiroglu et al. 2024: a = beta / (alpha + beta) = 0.513 for their fit
    assert EPOCH_2024.a == pytest.approx(0.514, abs=0.002)


@pytest.mark.parametrize("law", [CHINCHILLA_PAPER, CHINCHILLA_PAPER_UNROUNDED, EPOCH_2024])
def test_compute_optimal_minimises_loss_on_the_isoflop_line(law):
    for C in (1e19, 5.76e23, 1e26):
        N_opt, D_opt = law.compute_optimal(C)
        assert 6.0 * N_opt * D_opt == pytest.approx(C, rel=1e-10)
        N = N_opt * np.exp(np.linspace(-3, 3, 60001))      # brute force along C = 6 N D
        L = law(N, C / (6.0 * N))
        assert N[np.argmin(L)] == pytest.approx(N_opt, rel=2e-4)
        assert law.optimal_loss(C) == pytest.approx(L.min(), rel=1e-9)


def test_frontier_constant_g_satisfies_the_first_order_condition():
    law = ChinchillaLaw(E=1.7, A=400.0, B=2000.0, alpha=0.3, beta=0.4)
    N, D = law.compute_optimal(1e22)
    # d/dN of L(N, C/6N) = 0  <=>  alpha A / N^alpha = beta B / D^beta
    assert law.alpha * law.A / N**law.alpha == pytest.approx(law.beta * law.B / D**law.beta, rel=1e-10)
    assert law.tokens_per_param(1e22) == pytest.approx(D / N)


def test_epoch_fit_plans_about_20_tokens_per_param_at_chinchilla_scale():
    # Epoch's fit at Gopher compute gives a model near Chinchilla's 70B with ~20 tokens/param,
    # the rounded paper parameters a far smaller model trained on far more tokens (Besiroglu et al. 2024)
    C = 5.76e23
    assert 10 < float(EPOCH_2024.tokens_per_param(C)) < 30
    assert float(CHINCHILLA_PAPER.tokens_per_param(C)) > 60


def test_chinchilla_law_is_finite_for_extreme_sizes():
    law = EPOCH_2024
    L = law(np.array([1e3, 1e30]), np.array([1e3, 1e40]))
    assert np.all(np.isfinite(L))
    assert L[1] == pytest.approx(law.E, rel=1e-3)
    assert law.to_dict() == {"E": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}


def test_kaplan_nd_reduces_to_the_one_variable_laws():
    law = KAPLAN_2020_ND
    N = np.array([1e7, 1e9, 1e11])
    # infinite data: L -> (N_c / N)^alpha_N
    assert law(N, 1e40) == pytest.approx(KaplanLawN(law.alpha_N, law.N_c)(N), rel=1e-9)
    # infinite model: L -> (D_c / D)^alpha_D
    D = np.array([1e8, 1e10, 1e12])
    assert law(1e60, D) == pytest.approx(KaplanLawD(law.alpha_D, law.D_c)(D), rel=1e-9)


def test_kaplan_one_variable_laws_are_power_laws():
    assert KaplanLawN(0.076, 8.8e13)(8.8e13) == pytest.approx(1.0)
    assert KaplanLawD(0.095, 5.4e13)(5.4e13 / 2**10) == pytest.approx(2 ** (10 * 0.095))
    assert KaplanLawC(0.05, 1e20)(1e18) == pytest.approx(100**0.05)
    assert PowerLaw(k=2.0, p=0.5)(np.array([4.0, 9.0])) == pytest.approx([4.0, 6.0])


def test_kaplan_nd_loss_falls_with_both_n_and_d():
    law = KaplanLawND(alpha_N=0.076, alpha_D=0.103, N_c=6.4e13, D_c=1.8e13)
    assert law(1e9, 1e10) < law(1e8, 1e10)
    assert law(1e9, 1e11) < law(1e9, 1e10)
