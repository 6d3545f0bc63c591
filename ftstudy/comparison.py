"""Base vs fine-tuned, per benchmark: deltas computed from two results (never written by hand), a paired
bootstrap CI over the same items, the study plan's expectation, and guard benchmarks that must not regress.

Example:
    $ ftstudy compare classification            # base vs ft
    $ ftstudy compare classification --base base --ft lora --json
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ftstudy import records, registry, stats
from ftstudy.errors import UserError


def _load(root: Path, exp: str, tag: str, bench: str) -> tuple[dict | None, list[dict]]:
    path, _ = records.paths(root, exp, tag, bench)
    if not path.exists():
        return None, []
    return records.read_json(path), records.load_samples(path)


def refusal(base: dict, ft: dict) -> str | None:
    """Why two results cannot be compared (None when they can)."""
    if base["benchmark_version"] != ft["benchmark_version"]:
        return f"benchmark versions differ ({base['benchmark_version']} vs {ft['benchmark_version']})"
    if (base.get("subset_ids") or None) != (ft.get("subset_ids") or None) or base.get("n") != ft.get("n"):
        return "the two results are on different item sets (rerun both with the same --limit and --data-dir)"
    if base.get("settings", {}).get("task_version") != ft.get("settings", {}).get("task_version"):
        return "the harness task versions differ"
    return None


def verdict(paired: stats.Paired | None, higher_is_better: bool) -> str:
    if paired is None:
        return "no per-item data"
    if not paired.significant:
        return "not significant"
    better = paired.delta > 0 if higher_is_better else paired.delta < 0
    return "improved" if better else "regressed"


def plan_check(exp: registry.Experiment, bench_id: str, delta: float | None, higher: bool) -> dict | None:
    """The plan's expected before→after, and whether the measured gain met the expected gain."""
    exp_fig = exp.plan.get("expected", {}).get(bench_id)
    if not exp_fig or delta is None:
        return None
    want = exp_fig["after"] - exp_fig["before"]
    met = delta >= want if higher else delta <= want
    return {"before": exp_fig["before"], "after": exp_fig["after"], "expected_delta": round(want, 6),
            "met": bool(met)}


def compare_one(exp: registry.Experiment, bench_id: str, base_tag: str, ft_tag: str, root: Path,
                role: str, tolerance: float | None = None, seed: int = 0) -> dict[str, Any]:
    bench = registry.benchmark(bench_id)
    row: dict[str, Any] = {"experiment": exp.id, "benchmark": bench_id, "role": role, "metric": bench["metric"],
                           "higher_is_better": bench["higher_is_better"], "scale": bench["scale"]}
    base, base_s = _load(root, exp.id, base_tag, bench_id)
    ft, ft_s = _load(root, exp.id, ft_tag, bench_id)
    if base is None or ft is None:
        missing = [t for t, r in ((base_tag, base), (ft_tag, ft)) if r is None]
        return {**row, "status": "missing", "reason": f"no result for tag(s) {', '.join(missing)}"}
    why = refusal(base, ft)
    if why:
        return {**row, "status": "refused", "reason": why}
    b, f = base.get("value"), ft.get("value")
    row.update({"base": b, "ft": f, "n": ft.get("n")})
    if b is None or f is None:
        return {**row, "status": "missing", "reason": "a result has no value for the metric"}
    row["delta"] = f - b
    row["rel_delta"] = (f - b) / abs(b) if b else None
    paired = None
    base_scores = {s["id"]: s["score"] for s in base_s if s.get("score") is not None}
    ft_scores = {s["id"]: s["score"] for s in ft_s if s.get("score") is not None}
    if base_scores and set(base_scores) == set(ft_scores):
        paired = stats.paired_bootstrap(base_scores, ft_scores, seed=seed)
        row.update({"ci_low": paired.low, "ci_high": paired.high, "p_value": paired.p_value,
                    "significant": paired.significant, "paired_delta": paired.delta})
    row["verdict"] = verdict(paired, bench["higher_is_better"])
    if base_s and len(base_s) == len(ft_s) and all(
            x.get("output") == y.get("output") for x, y in zip(sorted(base_s, key=lambda s: s["id"]),
                                                                 sorted(ft_s, key=lambda s: s["id"]))):
        row["verdict"] = "adapter probably not applied"
        row["identical_outputs"] = True
    row["plan"] = plan_check(exp, bench_id, row["delta"], bench["higher_is_better"])
    if role == "guard" and tolerance is not None:
        drop = -row["delta"] if bench["higher_is_better"] else row["delta"]
        row["tolerance"] = tolerance
        row["guard_regression"] = drop > tolerance
        if row["guard_regression"]:
            row["verdict"] = f"GUARD REGRESSION (dropped {drop:.4g} > {tolerance})"
    row["status"] = "ok"
    return row


def compare(exp_id: str, base_tag: str = "base", ft_tag: str = "ft", root: Path = Path("results"),
            benchmarks: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per benchmark of the experiment (primary, secondary, guards)."""
    exp = registry.experiment(exp_id)
    if not (root / exp_id).is_dir():
        raise UserError(f"no results for {exp_id} under {root}; run `ftstudy bench {exp_id} ...` first")
    roles = [(b, "primary", None) for b in exp.primary] + [(b, "secondary", None) for b in exp.benchmarks.get("secondary", [])]
    roles += [(g["id"], "guard", g["tolerance"]) for g in exp.benchmarks.get("guards", [])]
    rows = [compare_one(exp, b, base_tag, ft_tag, root, role, tol) for b, role, tol in roles
            if benchmarks is None or b in benchmarks]
    from ftstudy.decontam_check import annotate

    return annotate(rows, root, exp_id, ft_tag)  # contamination left in the training data: marked


def fmt(v: Any, scale: str = "fraction") -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if scale == "fraction" else f"{v:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    out = [f"{'benchmark':15} {'role':9} {'base':>7} {'ft':>7} {'delta':>8} {'95% CI':>19} {'plan':>17}  verdict"]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"{r['benchmark']:15} {r['role']:9} {r['status']}: {r.get('reason', '')}")
            continue
        s = r["scale"]
        ci = f"[{fmt(r.get('ci_low'), s)}, {fmt(r.get('ci_high'), s)}]" if "ci_low" in r else "-"
        plan = r.get("plan")
        plan_s = f"{plan['before']}->{plan['after']} {'met' if plan['met'] else 'missed'}" if plan else "-"
        out.append(f"{r['benchmark']:15} {r['role']:9} {fmt(r['base'], s):>7} {fmt(r['ft'], s):>7} "
                   f"{r['delta']:+8.3f} {ci:>19} {plan_s:>17}  {r['verdict']}")
    return "\n".join(out)
