"""Text and JSON views of the registry for `ftstudy list`, `show` and `doctor`."""
from __future__ import annotations

import json
from dataclasses import asdict

from ftstudy import profiles, registry


def list_rows() -> list[dict]:
    rows = []
    for e in registry.experiments():
        rows.append({
            "id": e.id,
            "title": e.title,
            "datasets": [s.hub for s in e.active_sources],
            "methods": list(e.methods),
            "primary": e.primary,
            "benchmarks": e.all_benchmarks,
        })
    return rows


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def list_table(rows: list[dict]) -> str:
    body = [[r["id"], ", ".join(r["methods"]), ", ".join(r["primary"]), " + ".join(r["datasets"])] for r in rows]
    return _table(["id", "methods", "primary", "datasets"], body) + f"\n\n{len(rows)} experiments. `ftstudy show ID` for details."


def experiment_dict(exp_id: str) -> dict:
    e = registry.experiment(exp_id)
    d = asdict(e)
    d["hyperparameters_by_method"] = {m: e.hyper(m) for m in e.methods}
    d["benchmark_details"] = {b: registry.benchmark(b) for b in e.all_benchmarks}
    d["contamination"] = _contamination(e.id)
    return d


def _contamination(exp_id: str) -> dict | None:
    """The decontamination figures of the experiment's prepared default sources, when prepared here."""
    from ftstudy import decontam_check, gen

    return decontam_check.from_manifests([ds["path"] for ds in gen.build(exp_id)["datasets"]])


def show_json(exp_id: str) -> str:
    return json.dumps(experiment_dict(exp_id), indent=2)


def show_text(exp_id: str) -> str:
    e = registry.experiment(exp_id)
    out = [f"{e.id}: {e.title}", f"  teaches: {e.teaches}", "", "training data:"]
    for s in e.sources:
        where = s.hub + (f" [{s.config}]" if s.config else "") + f" split={s.split}"
        mix = "alternative (weight 0; use with --data)" if s.alternative else f"weight {s.weight}, cap {s.cap or 'none'}"
        out.append(f"  - {where}  ({mix})")
        out.append(f"      row shape {s.shape}: " + ", ".join(f"{k} -> {v}" for k, v in s.fields.items()))
        out.append(f"      to Axolotl: {s.to_axolotl}")
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
    out += ["", "study plan:"]
    for b, fig in e.plan.get("expected", {}).items():
        out.append(f"  {b}: expected {fig['before']} -> {fig['after']}")
    hours = ", ".join(f"{m} ~{h} h" for m, h in e.plan.get("hours", {}).items())
    out.append(f"  training time on one DGX Spark: {hours}")
    from ftstudy.decontam_check import lines

    out += [""] + lines(_contamination(e.id))
    out += ["", f"generate: ftstudy gen {e.id} --method {e.methods[0]} --hardware dgx-spark"]
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
