"""Text and JSON views of the registry for `ftstudy list`, `show` and `doctor`."""
from __future__ import annotations

import json
from dataclasses import asdict

from ftstudy.config import expectations
from ftstudy.config import profiles
from ftstudy.config import protocol
from ftstudy.config import registry
from ftstudy.core import tables
from ftstudy.data import sources as source_access


def list_rows() -> list[dict]:
    rows = []
    for e in registry.experiments():
        rows.append({
            "id": e.id,
            "phase": e.plan.get("phase"),
            "order": e.plan.get("order"),
            "title": e.title,
            "datasets": [s.hub for s in e.active_sources],
            "methods": list(e.methods),
            "primary": e.primary,
            "benchmarks": e.all_benchmarks,
        })
    return rows


def list_table(rows: list[dict]) -> str:
    body = [[r["id"], str(r["phase"] or "-"), ", ".join(r["methods"]), ", ".join(r["primary"]), " + ".join(r["datasets"])]
            for r in rows]
    return (tables.text(["id", "phase", "methods", "primary", "datasets"], body)
            + f"\n\n{len(rows)} experiments; phase: the study plan's recommended order (`ftstudy run --all` follows it)."
            + " `ftstudy show ID` for details.")


def experiment_dict(exp_id: str) -> dict:
    e = registry.experiment(exp_id)
    d = asdict(e)
    d["hyperparameters_by_method"] = {m: e.hyper(m) for m in e.methods}
    d["benchmark_details"] = {b: registry.benchmark(b) for b in e.all_benchmarks}
    d["plan_figures"] = plan_figures(e)
    d["not_run"] = registry.not_run(exp_id)
    d["contamination"] = _contamination(e.id)
    return d


def _contamination(exp_id: str) -> dict | None:
    """The decontamination figures of the experiment's prepared default sources, when prepared here."""
    from ftstudy.data.decontam import check as decontam_check
    from ftstudy.config import gen

    return decontam_check.from_manifests([ds["path"] for ds in gen.build(exp_id)["datasets"]])


def plan_figures(e: registry.Experiment) -> dict:
    """The plan's figures for one experiment, each with its provenance ('plan', or 'published' + citation)."""
    out = {"provenance": "plan", "document": expectations.PLAN_DOC, "phase": e.plan.get("phase"),
           "order": e.plan.get("order"), "size": e.plan.get("size"), "quick_reference": e.plan.get("quick_reference"),
           "caution": e.plan.get("caution"), "expected": {}, "published": {}, "reference": {}, "hours": {}}
    for b in e.plan.get("expected", {}):
        fig = expectations.figure(e, b)
        gain = expectations.gain_range(e, b)
        out["expected"][b] = {**fig, "expected_gain": list(gain) if gain else None}
    for b, pub in (e.plan.get("published") or {}).items():
        fig = e.plan.get("expected", {}).get(b, {})
        lo_hi = fig.get("before")
        out["published"][b] = {**pub, "provenance": "published",
                               "contradicts_plan_before": bool(lo_hi) and not (lo_hi[0] <= pub["base"] <= lo_hi[1])}
    for b, ref in (e.plan.get("reference") or {}).items():
        out["reference"][b] = {**ref, "provenance": "plan"}
    for m in e.methods:
        out["hours"][m] = expectations.hours(e, m)
    return out


def item_text(bd: dict) -> str:
    """One line on a benchmark's items: their count and source (probe sets say they are probes).

    Example:
        >>> item_text({"title": "MT-Bench, 80 two-turn questions", "n_items": 80, "items": "HuggingFaceH4/mt_bench_prompts"})
        '80 items; HuggingFaceH4/mt_bench_prompts'
    """
    if bd.get("probe_set"):
        return f"PROBE SET written for ftstudy ({bd.get('questions')}), not the public benchmark"
    if bd.get("questions"):
        return f"probes written for ftstudy ({bd['questions']}); a measure of its own, not a public benchmark"
    parts = [f"{bd['n_items']} items" if bd.get("n_items") else "all items of the task"]
    if bd.get("items"):
        from ftstudy.data.benchmark_items import SOURCES

        src = SOURCES.get(str(bd["items"]))
        parts.append(f"seeded subset of {src.where()}" if src else str(bd["items"]))
    elif bd["harness"] == "lm-eval":
        parts.append(f"lm-eval task {bd['task']}" + (" (local YAML in evals/tasks)" if bd.get("local_task") else "")
                     + (": " + ", ".join(bd["subtasks"]) if bd.get("subtasks") else ""))
    else:
        parts.append(f"{bd['harness']} task {bd['task']}")
    return "; ".join(parts)


def show_json(exp_id: str) -> str:
    return json.dumps(experiment_dict(exp_id), indent=2)


def show_text(exp_id: str) -> str:
    e = registry.experiment(exp_id)
    out = [f"{e.id}: {e.title}", f"  teaches: {e.teaches}", "", "training data:"]
    for s in e.sources:
        config = ",".join(s.configs) if s.configs else s.config
        where = s.hub + (f" [{config}]" if config else "") + f" split={s.split}"
        where += "".join(f" {k}={v}" for k, v in (("data_dir", s.data_dir), ("data_files", s.data_files)) if v)
        mix = (f"alternative (weight 0; select with --source {s.id}), cap {s.cap or 'none'}" if s.alternative
               else f"weight {s.weight}, cap {s.cap or 'none'}")
        out.append(f"  - {s.id}: {where}  ({mix})")
        out.append(f"      row shape {s.shape}: " + ", ".join(f"{k} -> {v}" for k, v in s.fields.items()))
        out.append(f"      to Axolotl: {s.to_axolotl}")
        out += [f"      {line}" for line in source_access.access_lines(s)]
    out += ["", f"sequence_len: {e.sequence_len}   seed: {e.seed}", "", "methods and hyperparameters:"]
    for m in e.methods:
        settings = {**profiles.METHOD_SETTINGS[m], **e.hyper(m)}
        out.append(f"  {m}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    out += ["", "benchmarks:"]
    for role in ("primary", "secondary"):
        for b in e.benchmarks.get(role, []):
            bd = registry.benchmark(b)
            out.append(f"  {role:9} {b:15} {bd['harness']:14} {bd['task']}  [{bd['metric']}]")
    for g in e.benchmarks.get("guards", []):
        bd = registry.benchmark(g["id"])
        out.append(f"  {'guard':9} {g['id']:15} {bd['harness']:14} {bd['task']}  [must not drop > {g['tolerance']}]")
    out += ["", "benchmark items (what a full run scores, and where it loads from) and protocol (the same for base "
            "and fine-tuned):"]
    for b in e.all_benchmarks:
        bd = registry.benchmark(b)
        out.append(f"  {b}: {item_text(bd)}" + (f"  (needs: {', '.join(bd['needs'])})" if bd.get("needs") else ""))
        out.append(f"      protocol: {protocol.summary(bd['protocol'])}")
        out += [f"      {line}" for line in protocol.deviation_lines(bd["protocol"])]
    skipped = registry.not_run(e.id)
    if skipped:
        out += ["", "named by the study plan, not run:"]
        out += [f"  {v['title']}: {v['reason']}" for v in skipped.values()]
    out += ["", plan_text(e)]
    from ftstudy.data.decontam.check import lines

    out += [""] + lines(_contamination(e.id))
    out += ["", f"generate: ftstudy gen {e.id} --method {e.methods[0]} --hardware dgx-spark"]
    return "\n".join(out)


def plan_text(e: registry.Experiment) -> str:
    """The plan's figures for `show`: order, size, expected before -> after or gain, published base scores."""
    p = plan_figures(e)
    phase = f"phase {p['phase']}, step {p['order']}" if p["phase"] else (e.plan.get("order_note") or "not in the order")
    out = [f"study plan ({p['document']}; every figure here is the plan's unless marked published):",
           f"  recommended order: {phase}", f"  dataset size: {p['size']:,} rows (used by default: every row of the default sources; --max-rows N "
           "lowers it)" if p["size"] else "  dataset size: -"]
    if p["quick_reference"]:
        q = p["quick_reference"]
        out.append(f"  quick reference: {q['text']} on {q['benchmark']}")
    for b, fig in p["expected"].items():
        gain = fig["expected_gain"]
        g = f"  (expected gain +{gain[0]:g}..{gain[1]:g})" if gain else ""
        out.append(f"  {b}: {fig.get('text') or expectations.text(fig)}{g}")
    for b, ref in p["reference"].items():
        out.append(f"  {b}: {ref['text']} - the figure the other methods are compared with")
    for b, pub in p["published"].items():
        flag = "  CONTRADICTS the plan's before; verdicts judge the gain, not the after-value" if pub["contradicts_plan_before"] else ""
        out.append(f"  {b}: published base {pub['base']:g} ({pub['citation']}){flag}")
    hours = [f"{m} {h['text']}" for m, h in p["hours"].items() if h]
    none = [m for m, h in p["hours"].items() if not h]
    out.append("  training time on one DGX Spark: " + ("; ".join(hours) or "-")
               + (f"  (no plan figure for {', '.join(none)})" if none else ""))
    if p["caution"]:
        out.append(f"  caution: {p['caution']}")
    return "\n".join(out)


def doctor_text(report: dict) -> str:
    out = [f"python {report['python']} on {report['machine']}; GPU: {'yes' if report['gpu'] else 'no (CPU profile only)'}"]
    for name, env in report["envs"].items():
        tag = "ok" if env.get("ok") else ("missing (optional)" if env["optional"] else "MISSING")
        out.append(f"\n{name:8} {tag:18} {env['for']}")
        if env.get("path"):
            out.append(f"         at {env['path']}")
        for pkg, ver in (env.get("versions") or {}).items():
            out.append(f"         {pkg:14} {ver or '-'}")
        if env.get("install"):
            out.append(f"         install: {env['install']}")
    return "\n".join(out)
