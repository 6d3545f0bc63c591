"""Cost per point gained: for each training run, its measured hours (train.json's wall time), GPU-hours (its
hardware profile's GPU count) and, on a DGX Spark, energy at the machine's rated power, divided by the gain of the
experiment's first primary benchmark for that method, with the gain's CI carried through.

A point is a percentage point of a fraction metric, or one point of a ROUGE x 100 or 1-10 judge score
(ftstudy/plan/power.py's POINT). A gain CI [lo, hi] with lo > 0 gives hours per point in [h / hi, h / lo]; a CI
that includes 0 gives [h / hi, unbounded] (the run may have bought nothing); no gain at all (hi <= 0) gives no
cost per point. Only training is counted: each method's before/after evaluation costs the same.

Energy: a DGX Spark draws at most what its external power supply delivers, 240 W (NVIDIA's DGX Spark
specifications, nvidia.com/en-us/products/workstations/dgx-spark/; the project's performance reference,
shared/docs/performance-reference.md: "about 140 W SoC TDP; 240 W PSU"), so kWh = hours x 0.240 is an upper
bound for the whole machine; a two-Spark profile counts two supplies. Other profiles have no rated figure here.

Example:
    >>> per_point(2.0, 4.0, 1.0, 8.0)
    {'value': 0.5, 'low': 0.25, 'high': 2.0}
    >>> per_point(2.0, 1.0, -0.5, 3.0)["high"]
    inf
"""
from __future__ import annotations

import math
from typing import Any

from ftstudy.config import profiles
from ftstudy.plan import power

SPARK_WATTS = 240.0  # one DGX Spark's power supply rating (see above)


def per_point(cost: float, gain: float, low: float | None, high: float | None) -> dict[str, float] | None:
    """`cost` per point of `gain` (points), with the interval from the gain's CI [low, high]; None when the
    point estimate is no gain. An interval end of inf means "unbounded"; None means the CI is unknown."""
    if gain <= 0:
        return None
    out = {"value": cost / gain, "low": None, "high": None}
    if low is not None and high is not None:
        out["low"] = cost / high if high > 0 else math.inf
        out["high"] = cost / low if low > 0 else math.inf
    return out


def text(r: dict[str, float] | None, nd: int = 3) -> str:
    """'0.5 [0.25, 2]', '0.5 [0.2, unbounded]' or 'no gain'.

    Example:
        >>> text(per_point(2.0, 1.0, -0.5, 3.0)), text(None)
        ('2 [0.667, unbounded]', 'no gain')
    """
    if r is None:
        return "no gain"
    f = lambda v: "unbounded" if v == math.inf else f"{v:.{nd}g}"
    return f(r["value"]) + (f" [{f(r['low'])}, {f(r['high'])}]" if r["low"] is not None else "")


def gain_points(row: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """The row's gain in points, oriented so that better is positive, and its CI (None when not paired)."""
    unit = power.POINT.get(row.get("scale") or "fraction", 0.01)
    sign = 1.0 if row.get("higher_is_better", True) else -1.0
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ends = sorted([sign * lo / unit, sign * hi / unit]) if lo is not None and hi is not None else [None, None]
    return sign * row["delta"] / unit, ends[0], ends[1]


def rows(runs: list[dict[str, Any]], comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per training run whose method has a primary comparison: hours, GPU-hours, kWh and each per point."""
    out = []
    for run in runs:
        wall = run.get("wall_time_s")
        mine = [r for r in comparisons if r.get("experiment") == run.get("experiment") and r.get("status") == "ok"
                and r.get("method") == run.get("method")]
        # the experiment's first primary benchmark, the one its plan is judged on; else (a run benched on its
        # secondaries only, as the demo's tool-calling leg) the first secondary, labelled as such
        prim = [r for r in mine if r.get("role") == "primary"] or [r for r in mine if r.get("role") == "secondary"]
        if wall is None or not prim:
            continue
        row = prim[0]
        hw = str(run.get("hardware") or "")
        try:
            prof = profiles.profile(hw)
        except Exception:  # a profile this version does not know: hours only
            prof = {}
        cpu = profiles.base_name(hw) == "cpu" if prof else True
        hours = wall / 3600.0
        gpu_h = None if cpu else hours * prof["gpus"]
        kwh = hours * SPARK_WATTS * prof.get("nodes", 1) / 1000 if profiles.base_name(hw).startswith("dgx-spark") else None
        g, lo, hi = gain_points(row)
        out.append({"experiment": run["experiment"], "method": run["method"], "hardware": hw,
                    "benchmark": row["benchmark"] + ("" if row["role"] == "primary" else " (secondary)"), "gain": g, "gain_low": lo, "gain_high": hi, "hours": hours,
                    "gpu_hours": gpu_h, "kwh": kwh, "hours_per_point": per_point(hours, g, lo, hi),
                    "gpu_hours_per_point": per_point(gpu_h, g, lo, hi) if gpu_h is not None else None,
                    "kwh_per_point": per_point(kwh, g, lo, hi) if kwh is not None else None})
    return out


HEAD = ["experiment", "method", "hardware", "benchmark", "gain (points) [95% CI]", "hours", "GPU-hours", "kWh (Spark, 240 W)",
        "hours per point [CI]", "GPU-hours per point [CI]"]
NOTE = ("Training wall time (train.json) per point of the first primary benchmark's gain (else the first secondary's) (a percentage point for a "
        "fraction); the interval comes from the gain's 95% CI, \"unbounded\" where the CI includes 0. GPU-hours: "
        "hours x the profile's GPUs (none on cpu). kWh: at a DGX Spark's rated 240 W supply, an upper bound.")


def table_rows(cost: list[dict[str, Any]]) -> list[list[str]]:
    f = lambda v: "-" if v is None else f"{v:.3g}"
    return [[r["experiment"], r["method"], r["hardware"], r["benchmark"],
              f"{r['gain']:+.3g}" + (f" [{r['gain_low']:+.3g}, {r['gain_high']:+.3g}]" if r["gain_low"] is not None else ""),
              f(r["hours"]), f(r["gpu_hours"]), f(r["kwh"]), text(r["hours_per_point"]),
              text(r["gpu_hours_per_point"]) if r["gpu_hours"] is not None else "-"] for r in rows_sorted(cost)]


def rows_sorted(cost: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cost, key=lambda r: (r["experiment"], r["method"], r["hardware"]))
