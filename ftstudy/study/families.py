"""The study's statistics as a whole: the families of tests declared before any result (experiments.yaml's
`statistics:`), each comparison's multiplicity-adjusted p-value within its family (Holm by default,
Benjamini-Hochberg or none with `--adjust`) beside its unadjusted CI, and each benchmark's minimum detectable
effect at its item count (ftstudy/plan/power.py).

A family is one benchmark role (primary, secondary, guards) of one experiment, or of the whole study, as the
declaration says; its members are that role's benchmarks x the methods each experiment declares, counted from
the registry, so the correction is fixed before anything runs. A declared member without a result counts as
p = 1 (a partial study's adjusted verdicts can only grow more significant as the rest arrives); a tag that is not
a declared method (e.g. `ft`) joins its family as one more member.

The p-value is the paired sign-flip permutation test of ftstudy/eval/stats.py (two-sided, on the same per-item
differences as the paired bootstrap CI); the unadjusted verdict stays the CI's. Both test "no difference", so
they agree except near the boundary, where a 95% CI that just excludes 0 can carry p slightly above 0.05.
The permutation p is a Monte-Carlo estimate from 2000 sign flips, so it is never below 1/2001: a family of m
tests cannot reach an adjusted p below m/2001 (0.013 for the bundled study's 26 guards; a family of 100 or more
could never be significant at 0.05, and would need more flips).

Example:
    >>> family("math", "guard")
    'guards of the study'
    >>> family("math", "primary")
    'primary of math'
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ftstudy.config import registry
from ftstudy.eval import stats
from ftstudy.plan import power

ROLE = {"primary": "primary", "secondary": "secondary", "guard": "guards"}  # a comparison row's role -> its family role


def family(exp_id: str, role: str) -> str:
    """The family a comparison of `role` in experiment `exp_id` belongs to, by the declared rule."""
    r = ROLE.get(role, role)
    return f"{r} of {exp_id}" if registry.statistics()["families"][r] == "experiment" else f"{r} of the study"


def declared() -> dict[str, set[tuple[str, str, str]]]:
    """Every family and its members (experiment, method, benchmark), from the registry alone.

    Example:
        >>> len(declared()["primary of classification"])      # ag_news x qlora, lora, full
        3
    """
    out: dict[str, set] = defaultdict(set)
    for exp in registry.experiments():
        roles = [("primary", b) for b in exp.primary] + [("secondary", b) for b in exp.benchmarks.get("secondary", [])]
        roles += [("guard", g["id"]) for g in exp.benchmarks.get("guards", [])]
        for role, b in roles:
            out[family(exp.id, role)] |= {(exp.id, m, b) for m in exp.methods}
    return dict(out)


def annotate(rows: list[dict[str, Any]], adjust: str | None = None) -> list[dict[str, Any]]:
    """Add to each row (with `experiment`, `method`, `benchmark`, `role`) its family and the family's size, its
    adjusted p-value and verdict at the declared alpha, and the benchmark's MDE at the measured base mean.
    `adjust` overrides the declared correction."""
    st = registry.statistics()
    how = adjust or st["adjust"]
    fams = declared()
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("role") in ROLE:
            groups[family(r["experiment"], r["role"])].append(r)
    for name, members in groups.items():
        keys = set(fams.get(name, set())) | {(r["experiment"], r["method"], r["benchmark"]) for r in members}
        tested = [r for r in members if r.get("p_value") is not None]
        adjusted = stats.adjust([r["p_value"] for r in tested], how, m=len(keys))
        for r in members:
            r.update({"family": name, "family_size": len(keys), "adjust": how, "alpha": st["alpha"]})
        for r, p in zip(tested, adjusted):
            r["p_adjusted"] = p
            r["significant_adjusted"] = p <= st["alpha"]
    for r in rows:
        if r.get("status") == "ok":
            r["mde"] = power.mde(r.get("n"), r.get("base"), r.get("scale", "fraction"), st["alpha"], st["power"],
                                 st["discordance"])
    return rows


def study_rows(results: Path, base_tag: str = "base", adjust: str | None = None) -> list[dict[str, Any]]:
    """Every comparison of the study under `results` (each experiment's every tag vs `base_tag`), annotated:
    the family-wide correction needs all of a family's members, some of which may be other experiments'."""
    from ftstudy.study import comparison

    rows = []
    for exp_dir in sorted(p for p in results.glob("*") if p.is_dir() and not p.name.startswith(".")):
        if exp_dir.name not in registry.experiment_ids():
            continue
        for tag, got in comparison.compare_tags(exp_dir.name, results, base_tag).items():
            rows += [{**r, "method": tag} for r in got]
    return annotate(rows, adjust)


def verdict(r: dict[str, Any]) -> str:
    """The adjusted verdict in a few words: 'p=0.012, holm 0.036: significant', or '-' without a p-value.

    Example:
        >>> verdict({"p_value": 0.012, "p_adjusted": 0.036, "adjust": "holm", "significant_adjusted": True})
        'p 0.012, holm 0.036: significant'
    """
    if r.get("p_adjusted") is None:
        return "-"
    word = "significant" if r["significant_adjusted"] else "not significant"
    if r["adjust"] == "none":
        return f"p {r['p_value']:.2g} (no correction): {word}"
    return f"p {r['p_value']:.2g}, {r['adjust']} {r['p_adjusted']:.2g}: {word}"
