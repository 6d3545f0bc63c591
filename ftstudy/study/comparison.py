"""Base vs fine-tuned, per benchmark: deltas computed from two results (never written by hand), a paired
bootstrap CI over the same items, the study plan's expectation, and guard benchmarks that must not regress.

The verdict (ftstudy/config/expectations.py) judges the measured gain and its CI against the plan's expected gain:
met, below the plan's range, above it, not significant, regressed, or improved (no plan figure).

Example:
    $ ftstudy compare classification            # base vs ft
    $ ftstudy compare classification --base base --ft lora --json
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ftstudy.config import expectations
from ftstudy.eval import records
from ftstudy.config import registry
from ftstudy.eval import stats
from ftstudy.core.errors import UserError
from ftstudy.core.names import under


def _load(root: Path, exp: str, tag: str, bench: str) -> tuple[dict | None, list[dict]]:
    """A result and its samples, both checked (a damaged or hand-edited file: one line naming it and the field)."""
    path, _ = records.paths(root, exp, tag, bench)
    if not path.exists():
        return None, []
    fix = (f"delete it and its .samples.jsonl and redo that benchmark: ftstudy bench {exp} --model MODEL --tag {tag} "
           f"--benchmarks {bench} --results-dir {root} --force (the rest of the study is untouched)")
    return records.read_record(path, fix), records.load_samples(path, fix)


def refusal(base: dict, ft: dict) -> str | None:
    """Why two results cannot be compared (None when they can)."""
    if base["benchmark_version"] != ft["benchmark_version"]:
        return f"benchmark versions differ ({base['benchmark_version']} vs {ft['benchmark_version']})"
    if (base.get("subset_ids") or None) != (ft.get("subset_ids") or None) or base.get("n") != ft.get("n"):
        return "the two results are on different item sets (rerun both with the same --limit and --data-dir)"
    if base.get("settings", {}).get("task_version") != ft.get("settings", {}).get("task_version"):
        return "the harness task versions differ"
    return records.mismatch(base, ft)  # the same harness version, protocol and judge


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
    row.update({"base": b, "ft": f, "n": ft.get("n"), "base_model": base.get("model"), "model": ft.get("model")})
    if b is None or f is None:
        why = [f"{t}: {r['undefined_values']['value']}" for t, r in ((base_tag, base), (ft_tag, ft))
               if (r.get("undefined_values") or {}).get("value")]  # the harness gave NaN or an infinity
        return {**row, "status": "missing", "reason": "a result has no value for the metric"
                + (f" ({'; '.join(why)})" if why else "")}
    row["delta"] = f - b
    row["rel_delta"] = (f - b) / abs(b) if b else None
    paired = None
    base_scores, ft_scores = stats.scores_by_id(base_s, "score"), stats.scores_by_id(ft_s, "score")
    if base_scores and set(base_scores) == set(ft_scores):
        paired = stats.paired_bootstrap(base_scores, ft_scores, seed=seed)
        row.update({"ci_low": paired.low, "ci_high": paired.high, "p_value": paired.p_value,
                    "significant": paired.significant, "paired_delta": paired.delta})
    row["plan"] = plan = expectations.check(exp, bench_id, bench, row)  # the plan's figure and expected gain
    expected = tuple(plan["expected_gain"]) if plan and plan.get("expected_gain") else None
    row["verdict"] = expectations.judge(paired.delta if paired else None, row.get("ci_low"), row.get("ci_high"),
                                        expected, bench["higher_is_better"])
    if base_s and len(base_s) == len(ft_s) and all(
            x.get("output") == y.get("output") for x, y in zip(sorted(base_s, key=lambda s: str(s["id"])),
                                                                 sorted(ft_s, key=lambda s: str(s["id"])))):
        row["verdict"] = "adapter probably not applied"
        row["identical_outputs"] = True
    if role == "guard" and tolerance is not None:
        drop = -row["delta"] if bench["higher_is_better"] else row["delta"]
        row["tolerance"] = tolerance
        row["guard_regression"] = drop > tolerance
        if row["guard_regression"]:
            row["verdict"] = f"GUARD REGRESSION (dropped {drop:.4g} > {tolerance})"
    row["status"] = "ok"
    return row


def check_args(exp_id: str, root: Path, *tags: str | None) -> registry.Experiment:
    """The experiment, once its tags pass the path rule and its results folder exists (else one line)."""
    exp = registry.experiment(exp_id)
    for tag in filter(None, tags):  # a tag names results/<exp>/<tag>/: the one path rule (core.names)
        under(root, "{experiment}", "{tag}", where="--base/--ft", experiment=exp_id, tag=tag)
    if not (root / exp_id).is_dir():
        raise UserError(f"no results for {exp_id} under {root}; run `ftstudy bench {exp_id} ...` first")
    return exp


def compare(exp_id: str, base_tag: str = "base", ft_tag: str = "ft", root: Path = Path("results"),
            benchmarks: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per benchmark of the experiment (primary, secondary, guards)."""
    exp = check_args(exp_id, root, base_tag, ft_tag)
    roles = [(b, "primary", None) for b in exp.primary] + [(b, "secondary", None) for b in exp.benchmarks.get("secondary", [])]
    roles += [(g["id"], "guard", g["tolerance"]) for g in exp.benchmarks.get("guards", [])]
    rows = [compare_one(exp, b, base_tag, ft_tag, root, role, tol) for b, role, tol in roles
            if benchmarks is None or b in benchmarks]
    from ftstudy.data.decontam.check import annotate

    return annotate(rows, root, exp_id, ft_tag)  # contamination left in the training data: marked


def compare_tags(exp_id: str, root: Path, base_tag: str = "base", ft_tag: str | None = None) -> dict[str, list[dict]]:
    """Each fine-tuned tag of an experiment (every tag found, or only `ft_tag`) compared with the base: the one
    "each tag vs base" loop that `compare`, the report, the demo summary and ftstudy.compare() share.

    Example:
        >>> compare_tags("classification", Path("results"))  # doctest: +SKIP
        {'full': [{'benchmark': 'ag_news', 'role': 'primary', ...}], 'lora': [...]}
    """
    tags = [ft_tag] if ft_tag else records.tags(root, exp_id, exclude=base_tag)
    return {t: compare(exp_id, base_tag, t, root) for t in tags}


def fmt(v: Any, scale: str = "fraction") -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if scale == "fraction" else f"{v:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    from ftstudy.core import tables

    from ftstudy.plan import power
    from ftstudy.study import families

    cells = []
    for r in rows:
        s = r.get("scale")
        ci = f"[{fmt(r.get('ci_low'), s)}, {fmt(r.get('ci_high'), s)}]" if "ci_low" in r else "-"
        cells.append([r["benchmark"], r["role"], f"{r['status']}: {r.get('reason', '')}"] if r["status"] != "ok" else
                     [r["benchmark"], r["role"], fmt(r["base"], s), fmt(r["ft"], s), f"{r['delta']:+.3f}", ci,
                      power.text(r.get("mde")), plan_gain(r), r["verdict"], families.verdict(r)])
    fams = sorted({f"{r['family']} ({r['family_size']} tests, {r['adjust']})" for r in rows if r.get("family")})
    head = ["benchmark", "role", "base", "ft", "delta", "95% CI", "MDE", "plan gain", "verdict (CI)", "adjusted (family)"]
    out = tables.text(head, cells, widths=[21, 9, 7, 7, 8, 19, 10, 13, 24], right=range(2, 7),
                      sep=[" "] * 6 + ["  "] * 3, rule=False)
    if fams:
        out += "\nfamilies: " + "; ".join(fams) + "; MDE: the gain found 80% of the time at alpha 0.05 (ftstudy/plan/power.py)"
    return out


def plan_gain(row: dict[str, Any]) -> str:
    """The plan's expected gain for a row ('+0.2..0.4'), its reference figure, or '-'."""
    plan = row.get("plan") or {}
    if plan.get("expected_gain"):
        lo, hi = plan["expected_gain"]
        return f"+{lo:g}..{hi:g}" if lo != hi else f"+{lo:g}"
    if plan.get("reference"):
        return f"ref {plan['reference']['value']:g}"
    return "-"
