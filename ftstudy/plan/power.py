"""The minimum detectable effect (MDE) of a paired base vs fine-tuned comparison at a benchmark's item count:
the smallest true gain that the study's test finds with probability `power` at two-sided level `alpha`, so a
user sees before paying for a run that 60 items cannot detect +3 points.

The formula is the normal approximation for a paired difference of means, the large-sample form of McNemar's
test for a pass/fail metric (Connor, R. J. 1987, "Sample size for testing differences in proportions for the
paired-sample design", Biometrics 43(1):207-211, with the variance under the alternative taken equal to the
variance under the null, which overstates the MDE slightly):

    MDE = (z[1 - alpha/2] + z[power]) * sqrt(psi / n)      in the metric's 0-1 units

`psi` is the variance of one item's (fine-tuned - base) score. It cannot be measured before the run, so it is an
assumption, declared in experiments.yaml (`statistics.discordance`); null is 2*m*(1-m) at base mean m (for a
pass/fail metric the discordant-pair rate of two models that err independently at accuracy m; for any metric
bounded to [lo, hi] the largest variance its mean allows, Bhatia & Davis 2000, for two uncorrelated models).
Base and fine-tuned models agree on most items, so the real MDE is usually smaller: null is the cautious figure.

Example:
    >>> round(mde(60, 0.5)["mde"], 4)      # 60 items at 50% accuracy: about 26 points
    0.2557
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

SCALES = {"fraction": (0.0, 1.0), "rouge100": (0.0, 100.0), "score10": (1.0, 10.0)}  # a metric's [lo, hi]
POINT = {"fraction": 0.01, "rouge100": 1.0, "score10": 1.0}  # "one point": a percentage point, a ROUGE or grade point


def mde(n: int | None, base: float | None, scale: str = "fraction", alpha: float = 0.05, power: float = 0.8,
        discordance: float | None = None) -> dict[str, Any] | None:
    """The MDE in the metric's own units at `n` items and base mean `base` (None when n is not fixed).

    Example:
        >>> r = mde(541, 0.45)
        >>> round(r["mde"], 4), r["psi"]
        (0.0847, 0.495)
    """
    if not n:
        return None
    lo, hi = SCALES.get(scale, SCALES["fraction"])
    m = 0.5 if base is None else min(1.0, max(0.0, (base - lo) / (hi - lo)))
    psi = float(discordance) if discordance is not None else 2 * m * (1 - m)
    psi = max(psi, 1e-12)  # a base at 0 or 100%: any change is detectable, but not from zero items
    z = NormalDist().inv_cdf
    k = z(1 - alpha / 2) + z(power)
    width = (hi - lo) * k * math.sqrt(psi / n)
    return {"mde": width, "points": width / POINT.get(scale, 0.01), "n": n, "base": base, "psi": round(psi, 6),
            "alpha": alpha, "power": power,
            "assumption": (f"psi = {psi:.3g} (declared)" if discordance is not None
                           else f"psi = 2m(1-m) = {psi:.3g} at base m = {m:.3g}" + (" (base unknown: the widest)" if base is None else ""))}


def text(r: dict[str, Any] | None) -> str:
    """'25.6 pts' (the MDE in points, 'pts' being percentage points for a fraction), or '-'.

    Example:
        >>> text(mde(60, 0.5)), text(None)
        ('25.6 pts', '-')
    """
    return "-" if not r else f"{r['points']:.3g} pts"


def for_experiment(exp) -> list[dict[str, Any]]:
    """Each benchmark of an experiment (`registry.Experiment`) with its item count, the base mean the MDE assumes
    (the plan's "before" midpoint, else the published base score, else unknown: 0.5, the widest), its MDE, and
    whether the plan's expected gain is at least the MDE (None where the plan gives no gain on this scale).

    Example:
        >>> from ftstudy.config import registry
        >>> r = for_experiment(registry.experiment("math"))[0]
        >>> r["benchmark"], r["n"], r["detects_plan_gain"]
        ('gsm8k', 1319, True)
    """
    from ftstudy.config import expectations, registry

    st = registry.statistics()
    roles = [(b, "primary") for b in exp.primary] + [(b, "secondary") for b in exp.benchmarks.get("secondary", [])]
    tol = {g["id"]: g["tolerance"] for g in exp.benchmarks.get("guards", [])}
    roles += [(g["id"], "guard") for g in exp.benchmarks.get("guards", [])]
    out = []
    for b, role in roles:
        bench = registry.benchmark(b)
        usable = expectations.scale_matches(exp, b, bench)
        fig = expectations.figure(exp, b) if usable else None
        pub = (exp.plan.get("published") or {}).get(b)
        base = (sum(fig["before"]) / 2 if fig and "before" in fig else pub["base"] if pub else None)
        r = mde(bench.get("n_items"), base, bench.get("scale", "fraction"), st["alpha"], st["power"], st["discordance"])
        gain = expectations.gain_range(exp, b) if usable else None
        out.append({"benchmark": b, "role": role, "n": bench.get("n_items"), "base": base, "mde": r,
                    "expected_gain": list(gain) if gain else None,
                    "detects_plan_gain": (gain[0] >= r["mde"]) if gain and r else None,
                    "tolerance": tol.get(b) if role == "guard" else None})
    return out


def lines(rows: list[dict[str, Any]]) -> list[str]:
    """The text view `ftstudy plan` prints: one line per benchmark."""
    out = []
    for r in rows:
        m = r["mde"]
        if not m:
            out.append(f"  {r['benchmark']:<16}{r['role']:<10}items not fixed (each subtask's own): no MDE")
            continue
        gain = r["expected_gain"]
        plan = ("" if not gain else f"; the plan expects +{gain[0]:g}..{gain[1]:g}: "
                + ("detectable" if r["detects_plan_gain"] else f"{r['n']} items cannot reliably detect its low end"))
        if r.get("tolerance") is not None:  # a guard: can it see a drop as large as it tolerates?
            plan = f"; a drop of its tolerance {r['tolerance']:g}: " + ("detectable" if r["tolerance"] >= m["mde"]
                                                                       else "not reliably detectable")
        out.append(f"  {r['benchmark']:<16}{r['role']:<10}{r['n']:>6} items  MDE {text(m):>10}  ({m['assumption']}){plan}")
    return out
