"""Bootstrap CIs and the paired base-vs-fine-tuned comparison on constructed per-item scores."""
from __future__ import annotations

import random

import pytest

from ftstudy.eval import stats


def scores(n, p, seed):
    rng = random.Random(seed)
    return {f"item-{i}": float(rng.random() < p) for i in range(n)}


def test_no_effect_ci_includes_zero():
    base = scores(400, 0.5, seed=1)
    tuned = dict(base)  # identical per-item scores: delta exactly 0
    r = stats.paired_bootstrap(base, tuned, seed=0)
    assert r.delta == 0 and r.low <= 0 <= r.high and not r.significant and r.p_value == 1.0


def test_noise_only_ci_includes_zero():
    # Same accuracy, independent noise per item: the difference is resampling noise only.
    base, tuned = scores(300, 0.6, seed=2), scores(300, 0.6, seed=3)
    r = stats.paired_bootstrap(base, tuned, seed=0)
    assert r.low <= 0 <= r.high
    assert not r.significant and r.p_value > 0.05


def test_clear_effect_ci_excludes_zero():
    base = scores(300, 0.4, seed=4)
    # fine-tuning fixes every third item that base got wrong: known delta = fixed / n
    tuned = {k: 1.0 if (v == 0 and int(k.split("-")[1]) % 3 == 0) else v for k, v in base.items()}
    known = sum(tuned.values()) / 300 - sum(base.values()) / 300
    r = stats.paired_bootstrap(base, tuned, seed=0)
    assert r.delta == pytest.approx(known) and known > 0.15
    assert 0 < r.low < r.delta < r.high
    assert r.significant and r.p_value < 0.01
    assert r.tuned_mean - r.base_mean == pytest.approx(r.delta)


def test_different_item_ids_refused():
    with pytest.raises(ValueError, match="same item ids"):
        stats.paired_bootstrap({"a": 1, "b": 0}, {"a": 1, "c": 0})


def test_seeded_and_order_free():
    base, tuned = scores(100, 0.5, seed=5), scores(100, 0.7, seed=6)
    a = stats.paired_bootstrap(base, tuned, seed=7)
    b = stats.paired_bootstrap(dict(reversed(list(base.items()))), tuned, seed=7)
    assert a == b


def test_bootstrap_ci_of_a_mean():
    xs = [float(i % 2) for i in range(1000)]
    ci = stats.bootstrap_ci(xs, seed=0)
    assert ci.mean == 0.5 and ci.n == 1000
    assert 0.45 < ci.low < 0.5 < ci.high < 0.55  # about ±1.96 * 0.5 / sqrt(1000) = ±0.031
    assert stats.bootstrap_ci([3.0]).low == stats.bootstrap_ci([3.0]).high == 3.0
    with pytest.raises(ValueError):
        stats.bootstrap_ci([])


def test_scores_by_id_feeds_paired_bootstrap():
    samples = [{"id": 1, "exact_match": 1.0, "param_acc": None}, {"id": 2, "exact_match": 0.0, "param_acc": 0.5}]
    assert stats.scores_by_id(samples, "exact_match") == {1: 1.0, 2: 0.0}
    assert stats.scores_by_id(samples, "param_acc") == {2: 0.5}


def test_large_input_exact_figures_and_reproducible():
    """10,000 items: the means and delta are exact counts; a seed reproduces the interval. (Speed: the
    benchmark tests/benchmarks/bench_stats.py, never a timed assert.)"""
    base, tuned = scores(10_000, 0.5, seed=9), scores(10_000, 0.52, seed=10)
    ones_base, ones_tuned = sum(base.values()), sum(tuned.values())
    r = stats.paired_bootstrap(base, tuned, seed=0)
    assert (r.n, r.base_mean, r.tuned_mean) == (10_000, ones_base / 10_000, ones_tuned / 10_000)
    assert r.delta == pytest.approx((ones_tuned - ones_base) / 10_000, abs=1e-15)
    assert r.low < r.delta < r.high
    assert stats.paired_bootstrap(base, tuned, seed=0) == r


def test_mean_is_the_plain_average_and_none_when_empty():
    """The one average every harness and scorer reports: the plain float sum over the count (the figures stored
    before it was shared), None when nothing was scored; booleans count as 0/1."""
    xs = [0.1, 0.2, 0.7, 1.0, 0.3]
    assert stats.mean(xs) == sum(xs) / len(xs) and stats.mean([]) is None
    assert stats.mean([True, False, True, True]) == 0.75
