"""Seeded bootstrap statistics for benchmark scores: a CI of one mean, and the paired comparison of base
vs fine-tuned on the same items (the question a study asks: is the gain larger than resampling noise?);
and `mean`, the plain average every harness and scorer reports (None when nothing was scored).

Resamples are drawn with numpy (a core dependency through rouge-score, pandas and matplotlib), seeded.

Example:
    >>> from ftstudy.eval.stats import bootstrap_ci, paired_bootstrap
    >>> bootstrap_ci([1, 0, 1, 1], seed=0).mean
    0.75
    >>> r = paired_bootstrap({"a": 0, "b": 1}, {"a": 1, "b": 1}, seed=0)
    >>> r.delta
    0.5
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

# Bounds the memory of one vectorised block of resamples (rows x items int64s, about 32 MB).
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class CI:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95


@dataclass(frozen=True)
class Paired:
    """Fine-tuned minus base over the same items.

    `low`/`high` bound the mean difference (paired bootstrap); `p_value` is a two-sided sign-flip
    permutation test of "no difference"; `significant` says whether the CI excludes 0.
    """

    n: int
    base_mean: float
    tuned_mean: float
    delta: float
    low: float
    high: float
    p_value: float
    significant: bool
    confidence: float = 0.95


def mean(values: Sequence[float]) -> float | None:
    """The average of `values`, None when there are none (a metric nothing could be scored for).

    Example:
        >>> mean([1.0, 0.0, 0.5]), mean([])
        (0.5, None)
    """
    return sum(values) / len(values) if values else None


def bootstrap_ci(scores: Iterable[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> CI:
    """Percentile bootstrap CI of the mean of `scores`.

    Example:
        >>> ci = bootstrap_ci([0.2, 0.4, 0.6, 0.8], seed=1)
        >>> ci.low <= ci.mean <= ci.high
        True
    """
    xs = [float(x) for x in scores]
    if not xs:
        raise ValueError("bootstrap_ci needs at least one score")
    _check(n_resamples, confidence)
    means = _resample_means(xs, n_resamples, seed)
    low, high = _percentiles(means, confidence)
    return CI(mean=math.fsum(xs) / len(xs), low=low, high=high, n=len(xs), confidence=confidence)


def paired_bootstrap(
    base: Mapping[object, float],
    tuned: Mapping[object, float],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Paired:
    """Paired bootstrap CI of mean(tuned) - mean(base) over per-item scores keyed by item id.

    Both mappings must hold exactly the same ids: comparing different item sets would mix the model
    effect with the item selection, so that is refused with a ValueError naming some of the differences.

    Example:
        >>> base = {i: 0.0 for i in range(50)}
        >>> tuned = {i: 1.0 for i in range(50)}
        >>> paired_bootstrap(base, tuned).significant
        True
    """
    only_base, only_tuned = set(base) - set(tuned), set(tuned) - set(base)
    if only_base or only_tuned:
        raise ValueError(
            "paired comparison needs the same item ids in both: "
            f"{len(only_base)} only in base (e.g. {_few(only_base)}), "
            f"{len(only_tuned)} only in tuned (e.g. {_few(only_tuned)})"
        )
    if not base:
        raise ValueError("paired comparison needs at least one item")
    _check(n_resamples, confidence)
    ids = sorted(base, key=str)  # a fixed order, so the seed alone decides the resamples
    diffs = [float(tuned[i]) - float(base[i]) for i in ids]
    n = len(diffs)
    delta = math.fsum(diffs) / n
    low, high = _percentiles(_resample_means(diffs, n_resamples, seed), confidence)
    return Paired(
        n=n,
        base_mean=math.fsum(float(base[i]) for i in ids) / n,
        tuned_mean=math.fsum(float(tuned[i]) for i in ids) / n,
        delta=delta,
        low=low,
        high=high,
        p_value=_sign_flip_p(diffs, n_resamples, seed + 1),
        significant=not (low <= 0.0 <= high),
        confidence=confidence,
    )


def adjust(p_values: Sequence[float], method: str = "holm", m: int | None = None) -> list[float]:
    """Multiplicity-adjusted p-values of one family, in the order given (as R's `p.adjust`): "holm" (Holm 1979,
    family-wise error), "bh" (Benjamini & Hochberg 1995, false discovery rate) or "none". `m` is the family's
    declared size when some of its tests have no p-value yet: they count as p = 1, which can only make the
    adjusted values larger (both procedures are monotone in every p-value).

    Benjamini & Hochberg's own worked example (1995, section 4.1: 15 p-values, q = 0.05): BH rejects four,
    Holm three.

    Example:
        >>> ps = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
        ...       0.5719, 0.6528, 0.7590, 1.0]
        >>> sum(p <= 0.05 for p in adjust(ps, "bh")), sum(p <= 0.05 for p in adjust(ps, "holm"))
        (4, 3)
        >>> [round(p, 4) for p in adjust([0.01, 0.04, 0.03, 0.005], "holm")]
        [0.03, 0.06, 0.06, 0.02]
    """
    ps = [float(p) for p in p_values]
    m = max(len(ps), m or 0)
    if method == "none" or not ps:
        return ps
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out = [1.0] * len(ps)
    if method == "holm":  # step down: the i-th smallest times (m - i), never below the one before it
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * ps[i]))
            out[i] = running
    elif method == "bh":  # step up: the i-th smallest times m / i, never above the one after it
        running = 1.0
        for rank in range(len(order) - 1, -1, -1):
            i = order[rank]
            running = min(running, m * ps[i] / (rank + 1))
            out[i] = min(1.0, running)
    else:
        raise ValueError(f"unknown adjustment {method!r}: holm, bh or none")
    return out


def scores_by_id(samples: Iterable[Mapping], metric: str) -> dict:
    """Turn a scorer's per-sample records into {id: score} for `paired_bootstrap`, skipping items where
    the metric does not apply (None, e.g. param_acc on an irrelevance row).

    Example:
        >>> scores_by_id([{"id": 1, "exact_match": 1.0}, {"id": 2, "exact_match": None}], "exact_match")
        {1: 1.0}
    """
    return {s["id"]: float(s[metric]) for s in samples if s.get(metric) is not None}


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _few(ids: set, k: int = 3) -> str:
    return ", ".join(repr(i) for i in sorted(ids, key=str)[:k]) or "-"


def _draws(n: int, n_resamples: int, seed: int, high: int) -> Iterator:
    """Seeded integers in [0, high), `n_resamples` rows of `n`, in blocks that bound the memory used."""
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, high, size=(min(rows, n_resamples - start), n))


def _resample_means(xs: Sequence[float], n_resamples: int, seed: int) -> list[float]:
    """Means of `n_resamples` resamples of xs drawn with replacement."""
    arr = np.asarray(xs, dtype=float)
    return np.concatenate([arr[idx].mean(axis=1) for idx in _draws(len(xs), n_resamples, seed, len(xs))]).tolist()


def _sign_flip_p(diffs: Sequence[float], n_resamples: int, seed: int) -> float:
    """Two-sided p-value of "the mean difference is 0": under that null each item's difference is as likely
    to carry either sign, so flip signs at random and count means at least as far from 0 as observed.
    The +1s keep p > 0, the usual correction for a Monte-Carlo permutation test."""
    observed = abs(math.fsum(diffs) / len(diffs)) - 1e-12  # tolerance: ties in float sums must count as "as extreme"
    arr = np.asarray(diffs, dtype=float)
    hits = sum(int((np.abs(((bits * 2 - 1) * arr).mean(axis=1)) >= observed).sum())
               for bits in _draws(len(diffs), n_resamples, seed, 2))
    return (hits + 1) / (n_resamples + 1)


def _percentiles(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The (1-c)/2 and (1+c)/2 quantiles, linearly interpolated (numpy's default rule)."""
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.asarray(values, dtype=float), [alpha, 1 - alpha])
    return float(low), float(high)
