"""The study report: a self-contained HTML page (plots embedded as PNG data, no network) and a Markdown summary.

One row per experiment × method × benchmark (base, fine-tuned, delta with its 95% CI, the plan's expectation,
verdict); training cost beside the plan's estimate; before/after bars, loss curves, delta vs expected; the lock.

Example:
    $ ftstudy report --out report/
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from ftstudy import comparison, expectations, records, registry
from ftstudy.fsio import atomic_write, read_json


def collect(root: Path) -> dict[str, Any]:
    """Everything the report shows, read from results/, runs/ and study.lock.json."""
    rows, runs = [], []
    res = root / "results"
    for exp_dir in sorted(p for p in res.glob("*") if p.is_dir() and not p.name.startswith(".")):
        try:
            registry.experiment(exp_dir.name)
        except LookupError:
            continue
        for tag in records.tags(res, exp_dir.name):
            rows += [{**r, "method": tag} for r in comparison.compare(exp_dir.name, "base", tag, res) if r["status"] != "missing"]
    for tj in sorted((root / "runs").glob("*/*/train.json")):
        t = read_json(tj)
        exp = registry.experiment(t["experiment"]) if t.get("experiment") in registry.experiment_ids() else None
        t["plan_hours"] = (expectations.hours(exp, t.get("method")) or {}).get("text") if exp else None
        t["planner"] = _planner(tj.parent)
        t["rows"], t["plan_size"] = _rows_used(tj.parent), (exp.plan.get("size") if exp else None)
        runs.append(t)
    lock = read_json(root / "study.lock.json") if (root / "study.lock.json").exists() else None
    present = dict.fromkeys([r["experiment"] for r in rows] + [t.get("experiment") for t in runs])
    cautions = {e: registry.experiment(e).plan["caution"] for e in present
                if e in registry.experiment_ids() and registry.experiment(e).plan.get("caution")}
    from ftstudy.decontam_check import report_rows

    return {"rows": rows, "runs": runs, "lock": lock, "cautions": cautions, "contamination": report_rows(root)}


def _rows_used(run_dir: Path) -> int | None:
    """Training rows the run actually read: the sum over its prepared files' manifests (data.json)."""
    dj = run_dir / "data.json"
    try:
        sets = read_json(dj)["datasets"] if dj.exists() else []
        counts = [d["manifest"]["counts"]["converted"] for d in sets]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return sum(counts) if counts else None


def _planner(run_dir: Path) -> dict[str, float | None]:
    """The planner's prediction for a finished run, to show beside what was measured (empty if unavailable)."""
    try:
        from ftstudy import planner_check

        rows = {r["quantity"]: r["predicted"] for r in planner_check.check(run_dir)["rows"]}
    except Exception:  # a run the planner cannot read (an old or foreign folder) still gets its measured row
        return {}
    return rows


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots(data: dict[str, Any]) -> dict[str, str]:
    """Before/after bars, loss curves, delta vs expected, as base64 PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    if ok:
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(ok)), 3.2))
        labels = [f"{r['experiment']}\n{r['method']}·{r['benchmark']}" for r in ok]
        xs = range(len(ok))
        ax.bar([x - 0.2 for x in xs], [r["base"] for r in ok], 0.4, label="base", color="#9aa5b1")
        ax.bar([x + 0.2 for x in xs], [r["ft"] for r in ok], 0.4, label="fine-tuned", color="#2f6fde")
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_title("Before / after")
        ax.legend(fontsize=7)
        out["bars"] = _png(fig)
        planned = [r for r in ok if (r.get("plan") or {}).get("expected_gain")]
        if planned:
            fig, ax = plt.subplots(figsize=(4.5, 3.2))
            for r in planned:
                lo, hi = r["plan"]["expected_gain"]
                x = (lo + hi) / 2
                ax.errorbar([x], [r["delta"]], xerr=[[x - lo], [hi - x]], fmt="o", color="#2f6fde", lw=0.8)
                ax.annotate(f"{r['experiment']}·{r['benchmark']}", (x, r["delta"]), fontsize=6)
            lim = max(abs(v) for r in planned for v in (*r["plan"]["expected_gain"], r["delta"])) or 1
            ax.plot([-lim, lim], [-lim, lim], ls="--", color="#999", lw=0.8)
            ax.set_xlabel("expected delta (plan)")
            ax.set_ylabel("measured delta")
            ax.set_title("Delta vs expected")
            out["delta_vs_expected"] = _png(fig)
    curves = [r for r in data["runs"] if r.get("loss_curve")]
    if curves:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for r in curves:
            steps, losses = zip(*r["loss_curve"])
            ax.plot(steps, losses, label=f"{r['experiment']}/{r['method']}")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title("Loss curves")
        ax.legend(fontsize=7)
        out["loss"] = _png(fig)
    return out


def _f(v: Any, nd: int = 3) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _label(bench_id: str) -> str:
    """A benchmark's name in the report; the project's own probe sets say so, so that nobody reads them as
    the public benchmark they resemble."""
    from ftstudy import registry

    try:
        probe = registry.benchmark(bench_id).get("probe_set")
    except registry.UnknownName:
        probe = False
    return f"{bench_id} (probe set, not the public benchmark)" if probe else bench_id


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    out = []
    for r in data["rows"]:
        if r["status"] != "ok":
            out.append([r["experiment"], r["method"], _label(r["benchmark"]), "-", "-", "-", "-", "-", f"{r['status']}: {r.get('reason', '')}"])
            continue
        ci = f"[{_f(r.get('ci_low'))}, {_f(r.get('ci_high'))}]" if "ci_low" in r else "-"
        plan = r.get("plan") or {}
        exp_s = expectations.text(plan.get("figure"))
        if plan.get("expected_gain"):
            exp_s += f" (gain {comparison.plan_gain(r)})"
        if plan.get("reference"):
            exp_s = f"plan's {plan['reference']['method']} result {plan['reference']['value']:g}"
        if plan.get("published"):
            exp_s += f"; published base {plan['published']['base']:g}"
        sig = "" if r.get("significant") else " (not significant)" if "significant" in r else ""
        out.append([r["experiment"], r["method"], _label(r["benchmark"]), _f(r["base"]), _f(r["ft"]), f"{r['delta']:+.3f}", ci,
                    exp_s, r["verdict"] + (sig if not r["verdict"].startswith("not significant") else "")])
    return out


HEAD = ["experiment", "method", "benchmark", "base", "fine-tuned", "delta", "95% CI", "expected (plan)", "verdict"]
CONTAM = ["experiment", "run", "benchmark", "status", "items", "training rows sharing an n-gram", "action", "example"]
CONTAM_NOTE = ("Training rows that share an n-gram (13 words by default) with a benchmark item, per experiment and "
               "benchmark; \"not checked\" means the items could not be loaded, not that the data is clean.")
COST = ["experiment", "method", "hardware", "training rows (plan)", "steps", "wall time (s)", "tokens/s (planner)", "peak memory GB (planner)",
        "plan (DGX Spark)"]


def _vs(measured: Any, predicted: Any, nd: int) -> str:
    if measured is None:
        return "-"
    if predicted is None:
        return _f(measured, nd)
    err = (predicted - measured) / measured * 100 if measured else 0.0
    return f"{_f(measured, nd)} ({_f(predicted, nd)}, {err:+.0f}%)"


def cost_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in data["runs"]:
        pred = r.get("planner") or {}
        size = f"{r['rows']:,}" if r.get("rows") is not None else "-"
        size += f" ({r['plan_size']:,})" if r.get("plan_size") else ""
        rows.append([r.get("experiment", "?"), r.get("method", "?"), r.get("hardware", "?"), size, _f(r.get("steps")),
                     _f(r.get("wall_time_s"), 1), _vs(r.get("tokens_per_second"), pred.get("tokens_per_second"), 1),
                     _vs(r.get("peak_memory_gb"), pred.get("peak_memory_gb"), 2), r.get("plan_hours") or "-"])
    return rows


def markdown(data: dict[str, Any]) -> str:
    def md(head, rows):
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows])

    parts = ["# ftstudy report", "", "## Base vs fine-tuned", "", md(HEAD, table_rows(data)), ""]
    if data.get("cautions"):
        parts += ["## Cautions", ""] + [f"- **{e}**: {c}" for e, c in data["cautions"].items()] + [""]
    parts += ["## Training cost", "", md(COST, cost_rows(data)), "", "## Contamination", "", CONTAM_NOTE, "",
              md(CONTAM, data.get("contamination") or [])]
    if data["lock"]:
        parts += ["", "## Lock", "", "```json", json.dumps(data["lock"], indent=2), "```"]
    return "\n".join(parts) + "\n"


def page(data: dict[str, Any], images: dict[str, str]) -> str:
    def tab(head, rows, cls):
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'

    imgs = "".join(f'<figure><img alt="{k}" src="data:image/png;base64,{v}"></figure>' for k, v in images.items())
    cautions = "".join(f"<li><b>{html.escape(e)}</b>: {html.escape(c)}</li>" for e, c in data.get("cautions", {}).items())
    cautions = f'<h2>Cautions</h2><ul class="cautions">{cautions}</ul>' if cautions else ""
    lock = f"<h2>Lock</h2><pre>{html.escape(json.dumps(data['lock'], indent=2))}</pre>" if data["lock"] else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ftstudy report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}th{{background:#f3f5f7}}figure{{display:inline-block;margin:0 1em 1em 0}}
img{{max-width:100%}}pre{{background:#f6f8fa;padding:1em;overflow:auto}}</style></head>
<body><h1>ftstudy report</h1>
<h2>Base vs fine-tuned</h2>{tab(HEAD, table_rows(data), "results")}
{cautions}
<h2>Plots</h2>{imgs or "<p>no plots yet</p>"}
<h2>Training cost</h2>{tab(COST, cost_rows(data), "cost")}
<h2>Contamination</h2><p>{html.escape(CONTAM_NOTE)}</p>{tab(CONTAM, data.get("contamination") or [], "contamination")}
{lock}</body></html>
"""


def write(root: Path, out_dir: Path) -> list[Path]:
    """Write report.html and report.md into out_dir; returns their paths."""
    data = collect(root)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write(html_path, page(data, plots(data)))
    atomic_write(md_path, markdown(data))
    return [html_path, md_path]
