"""The study plan's expectations (shared/docs/study-plan.md) and the verdict a measured gain earns against them.

Every figure under an experiment's `plan:` in experiments.yaml is the plan's own (provenance `plan`), in the
benchmark metric's units: before/after ranges (`IFEval 40-50% -> 70-80%` is before [0.40, 0.50], after
[0.70, 0.80]), or a gain range where the plan gives only "+x" (`MedMCQA +15-20%` is gain [0.15, 0.20],
read as percentage points). Published scores of the base model sit beside them under `published:` with their
citation (provenance `published`); where one contradicts the plan's "before", both are shown, and the verdict
never depends on the absolute "after": it is judged on the measured gain against the plan's expected gain.

Verdicts (with the paired bootstrap 95% CI of the gain):
    not significant          the CI includes 0
    regressed                the CI is entirely on the wrong side of 0
    below the plan's range   a significant gain smaller than the plan's expected gain
    met                      a significant gain inside the plan's expected gain
    above the plan's range   a significant gain larger than the plan's expected gain
    improved (no plan figure) a significant gain where the plan gives no figure on this metric's scale

Example:
    >>> from ftstudy.config import registry
    >>> gain_range(registry.experiment("instruction"), "ifeval")
    (0.2, 0.4)
    >>> judge(0.25, 0.1, 0.4, (0.2, 0.4), True)
    'met'
"""
from __future__ import annotations

from typing import Any

PLAN_DOC = "shared/docs/study-plan.md"
VERDICTS = ("met", "below the plan's range", "above the plan's range", "not significant", "regressed",
            "improved (no plan figure)")


def figure(exp, bench_id: str) -> dict[str, Any] | None:
    """The plan's figure for one benchmark of an experiment, with its provenance, or None."""
    fig = (exp.plan.get("expected") or {}).get(bench_id)
    return {**fig, "provenance": "plan"} if fig else None


def gain_range(exp, bench_id: str) -> tuple[float, float] | None:
    """The expected gain (in the direction of improvement) the plan allows: the widest gain its before and
    after ranges permit, or its stated "+x" range. None where the plan gives no number.

    A lower-is-better metric (toxicity rate) gains by falling: before [0.05, 0.10] -> after [0, 0.01] is a
    gain (reduction) of [0.04, 0.10].
    """
    fig = figure(exp, bench_id)
    if not fig:
        return None
    if "gain" in fig:
        lo, hi = fig["gain"]
        return float(lo), float(hi)
    if "before" not in fig or "after" not in fig:
        return None
    (b_lo, b_hi), (a_lo, a_hi) = fig["before"], fig["after"]
    if fig.get("higher_is_better", True):
        return round(a_lo - b_hi, 6), round(a_hi - b_lo, 6)
    return round(b_lo - a_hi, 6), round(b_hi - a_lo, 6)


def scale_matches(exp, bench_id: str, bench: dict) -> bool:
    """The plan's figure is on the scale and direction the benchmark measures (else it cannot judge it)."""
    fig = figure(exp, bench_id) or {}
    return (fig.get("scale", "fraction") == bench.get("scale", "fraction")
            and fig.get("higher_is_better", True) == bench.get("higher_is_better", True))


def judge(gain: float | None, ci_low: float | None, ci_high: float | None,
          expected: tuple[float, float] | None, higher_is_better: bool) -> str:
    """The verdict for a measured change (ft - base), its CI, and the plan's expected gain range."""
    if gain is None or ci_low is None or ci_high is None:
        return "no per-item data"
    if ci_low <= 0 <= ci_high:
        return "not significant"
    improved = gain > 0 if higher_is_better else gain < 0
    if not improved:
        return "regressed"
    if expected is None:
        return "improved (no plan figure)"
    g = gain if higher_is_better else -gain
    lo, hi = expected
    if g < lo:
        return "below the plan's range"
    if g > hi:
        return "above the plan's range"
    return "met"


def check(exp, bench_id: str, bench: dict, row: dict) -> dict | None:
    """What the plan expected for this comparison row and what the measurement says against it."""
    fig = figure(exp, bench_id)
    pub = (exp.plan.get("published") or {}).get(bench_id)
    ref = (exp.plan.get("reference") or {}).get(bench_id)
    if not (fig or pub or ref):
        return None
    out: dict[str, Any] = {"figure": fig, "published": {**pub, "provenance": "published"} if pub else None}
    usable = bool(fig) and scale_matches(exp, bench_id, bench)
    out["expected_gain"] = list(gain_range(exp, bench_id)) if usable and gain_range(exp, bench_id) else None
    if fig and not usable:
        out["note"] = (f"the plan's figure is on another scale ({fig.get('scale', 'fraction')}) than this benchmark "
                       f"({bench.get('scale')}): not used for the verdict")
    if pub and fig and "before" in fig:
        lo, hi = fig["before"]
        out["contradicts_plan_before"] = not (lo <= pub["base"] <= hi)
    if ref and row.get("ft") is not None:
        out["reference"] = {**ref, "provenance": "plan",
                            "ft_vs_reference": round(row["ft"] - ref["value"], 6)}
    return out


def text(fig: dict | None) -> str:
    """The plan's figure as one short string: '0.40-0.50 -> 0.70-0.80', 'gain +0.15-0.20'."""
    if not fig:
        return "-"
    rng = lambda r: f"{r[0]:g}-{r[1]:g}" if r[0] != r[1] else f"{r[0]:g}"
    if "before" in fig and "after" in fig:
        return f"{rng(fig['before'])} -> {rng(fig['after'])}"
    if "gain" in fig:
        return f"gain +{rng(fig['gain'])}"
    return fig.get("text", "-")


def hours(exp, method: str) -> dict[str, Any] | None:
    """The plan's training time for one method: the section's range and the estimates table's figure.

    Example:
        >>> from ftstudy.config import registry
        >>> hours(registry.experiment("instruction"), "full")["text"]
        '~72+ h (section), ~100+ h (table)'
    """
    h = (exp.plan.get("hours") or {}).get(method)
    if not h:
        return None
    parts = []
    for key, label in (("section", "section"), ("table", "table")):
        v = h.get(key)
        if v is None:
            continue
        lo, hi = (v, v) if not isinstance(v, list) else v
        s = f"~{lo:g}+" if hi is None else (f"~{lo:g}-{hi:g}" if lo != hi else f"~{lo:g}")
        parts.append(f"{s} h ({label})")
    return {**h, "text": ", ".join(parts), "provenance": "plan"}


def planned_hours(exp, method: str) -> float | None:
    """One number for the plan's hours (for the planner's comparison): the estimates table's figure where the
    plan has one, else the middle of the section's range; an open range ("72+") gives its lower bound."""
    h = (exp.plan.get("hours") or {}).get(method)
    if not h:
        return None
    v = h.get("table", h.get("section"))
    if not isinstance(v, list):
        return float(v)
    lo, hi = v
    return float(lo) if hi is None else (lo + hi) / 2
