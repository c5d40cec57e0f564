"""LR schedules: warmup, cosine over the run's own horizon, constant, WSD with (1 - sqrt) cool-down."""

from __future__ import annotations

import math

import pytest

from scaling.schedules import Schedule, constant, cosine, wsd, wsd_decay_start


def test_warmup_is_linear_then_cosine_reaches_min_at_the_horizon():
    kw = dict(total=1000, warmup=100, min_lr_ratio=0.1)
    assert cosine(50, **kw) == pytest.approx(0.5)
    assert cosine(100, **kw) == pytest.approx(1.0)
    assert cosine(550, **kw) == pytest.approx(0.55)  # half way through the decay: (1 + min) / 2
    assert cosine(1000, **kw) == pytest.approx(0.1)
    assert cosine(5000, **kw) == pytest.approx(0.1)
    values = [cosine(t, **kw) for t in range(100, 1001, 10)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_constant_only_warms_up():
    assert constant(10, warmup=100) == pytest.approx(0.1)
    assert constant(100, warmup=100) == 1.0 and constant(10**9, warmup=100) == 1.0
    assert constant(0, warmup=0) == 1.0


def test_wsd_is_stable_then_one_minus_sqrt():
    start = wsd_decay_start(1000, 0.2)
    assert start == pytest.approx(800)
    kw = dict(total=1000, warmup=50, decay_start=start, min_lr_ratio=0.0)
    assert wsd(25, **kw) == pytest.approx(0.5)
    assert wsd(500, **kw) == 1.0 and wsd(800, **kw) == 1.0
    assert wsd(850, **kw) == pytest.approx(1 - math.sqrt(0.25))  # Hägele et al. 2024, decay_type="sqrt"
    assert wsd(1000, **kw) == pytest.approx(0.0)
    kw["min_lr_ratio"] = 0.1
    assert wsd(1000, **kw) == pytest.approx(0.1)
    assert wsd(850, **kw) == pytest.approx(0.1 + 0.9 * 0.5)


def test_a_cooldown_branch_shares_the_trunk_until_it_leaves():
    trunk = Schedule("wsd", 1e-3, total=10_000, warmup=500, decay_start=8_000)
    branch = Schedule("wsd", 1e-3, total=2_500, warmup=500, decay_start=2_000)
    for t in range(0, 2_001, 100):
        assert branch.lr(t) == trunk.lr(t)
    assert branch.lr(2_500) == pytest.approx(1e-4)
    assert trunk.lr(2_500) == pytest.approx(1e-3)


def test_schedule_object_and_errors():
    s = Schedule("cosine", 3e-3, total=100, warmup=10)
    assert s.lr(10) == pytest.approx(3e-3) and s.lr(100) == pytest.approx(3e-4)
    assert Schedule("constant", 1.0, total=100, warmup=0).lr(99) == 1.0
    with pytest.raises(ValueError, match="decay_start"):
        Schedule("wsd", 1.0, total=100)
    with pytest.raises(ValueError, match="linear"):
        Schedule("linear", 1.0, total=100)  # type: ignore[arg-type]
