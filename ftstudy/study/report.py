"""The study report: a self-contained HTML page (plots embedded as PNG data, no network) and a Markdown summary.

Short enough to read, in this order: the verdict table (one row per experiment × method × benchmark: base,
fine-tuned, delta with its 95% CI, the benchmark's minimum detectable effect, the plan's expectation, the CI's
verdict and the p-value adjusted within its declared family, ftstudy/study/families.py); cautions; the
before/after chart with CI whiskers, the measured gain vs the plan's range, the loss curves (inline SVG); a few
held-out examples per experiment, base and fine-tuned outputs side by side where they differ; training cost, the
planner's prediction beside what was measured; cost per point gained (ftstudy/study/cost.py); the lock collapsed
(and linked: study.lock.json).

Model output, item text, tag and file names are untrusted: the HTML escapes every cell, and the Markdown writes
them through `md`, so neither can carry raw HTML, a script or a link. Every file is read through core.checked_json:
a hand-edited result, state, lock or train.json stops the report with one line naming the file and the field.

Example:
    $ ftstudy report --out report/
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ftstudy.study import comparison, cost
from ftstudy.config import expectations
from ftstudy.config import registry
from ftstudy.core import checked_json, tables
from ftstudy.core.fsio import atomic_write, read_json


def collect(root: Path, adjust: str | None = None) -> dict[str, Any]:
    """Everything the report shows, read from results/, runs/ and study.lock.json."""
    from ftstudy.study import families

    runs, res = [], root / "results"
    rows = [r for r in families.study_rows(res, adjust=adjust) if r["status"] != "missing"]  # adjusted in families
    for tj in sorted((root / "runs").glob("*/*/train.json")):
        t = checked_json.read(tj, "train_run", allow_nonfinite=True)  # a diverged loss is kept as NaN by train
        exp = registry.experiment(t["experiment"]) if t.get("experiment") in registry.experiment_ids() else None
        t["plan_hours"] = (expectations.hours(exp, t.get("method")) or {}).get("text") if exp else None
        t["planner"] = _planner(tj.parent)
        t["rows"], t["plan_size"] = _rows_used(tj.parent), (exp.plan.get("size") if exp else None)
        runs.append(t)
    from ftstudy.study import study_lock

    lock = study_lock.read(root / "study.lock.json") if (root / "study.lock.json").exists() else None
    present = dict.fromkeys([r["experiment"] for r in rows] + [t.get("experiment") for t in runs])
    cautions = {e: registry.experiment(e).plan["caution"] for e in present
                if e in registry.experiment_ids() and registry.experiment(e).plan.get("caution")}
    from ftstudy.study import report_views
    from ftstudy.data.decontam.check import report_rows

    return {"rows": rows, "runs": runs, "lock": lock, "cost": cost.rows(runs, rows), "cautions": cautions, "contamination": report_rows(root),
            "examples": report_views.examples(res, rows) if res.is_dir() else [],
            "lock_path": str((root / "study.lock.json").resolve()) if lock is not None else None}


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
        from ftstudy.plan import check as planner_check

        rows = {r["quantity"]: r["predicted"] for r in planner_check.check(run_dir)["rows"]}
    except Exception:  # a run the planner cannot read (an old or foreign folder) still gets its measured row
        return {}
    return rows


def plots(data: dict[str, Any]) -> dict[str, str]:
    """Before/after bars with CI whiskers, measured gain vs the plan's range, loss curves: inline SVG elements."""
    from ftstudy.study import report_views as views

    out = {}
    if any(r["status"] == "ok" for r in data["rows"]):
        out["before / after"] = views.bars(data["rows"])
        out["gain vs plan"] = views.delta_vs_plan(data["rows"])
    out["loss curves"] = views.loss(data["runs"])
    return {k: v for k, v in out.items() if v}


def _f(v: Any, nd: int = 3) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _label(bench_id: str) -> str:
    """A benchmark's name in the report; the project's own probe sets say so, so that nobody reads them as
    the public benchmark they resemble."""
    from ftstudy.config import registry

    try:
        probe = registry.benchmark(bench_id).get("probe_set")
    except registry.UnknownName:
        probe = False
    from ftstudy.study.report_views import protocol_note

    return (f"{bench_id} (probe set, not the public benchmark)" if probe else bench_id) + protocol_note(bench_id)


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    from ftstudy.plan import power
    from ftstudy.study import families

    out = []
    for r in data["rows"]:
        if r["status"] != "ok":
            out.append([r["experiment"], r["method"], _label(r["benchmark"]), "-", "-", "-", "-", "-", "-",
                        f"{r['status']}: {r.get('reason', '')}", "-"])
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
                    power.text(r.get("mde")), exp_s, r["verdict"] + (sig if not r["verdict"].startswith("not significant") else ""),
                    families.verdict(r) + (f" ({r['family']}, {r['family_size']} tests)" if r.get("family") else "")])
    return out


HEAD = ["experiment", "method", "benchmark", "base", "fine-tuned", "delta", "95% CI", "MDE", "expected (plan)",
        "verdict (CI, unadjusted)", "adjusted p (family)"]
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


# Markdown renderers pass raw HTML through (CommonMark's HTML blocks and inline HTML) and make links of [text](url)
# and <url>: so `<` and `&` become entities, and the characters that open links, images and code spans, or end a
# table cell, are backslash-escaped (CommonMark's escape for any ASCII punctuation); newlines end no cell either.
_MD = str.maketrans({"&": "&amp;", "<": "&lt;", "\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]", "|": "\\|",
                     "\n": " ", "\r": " "})


def md(text: Any) -> str:
    """Untrusted text as inert Markdown: shown as written, never as HTML, a link, an image or a new cell.

    Example:
        >>> md("<img src=x onerror=alert(1)> [a](javascript:x) | b")
        '&lt;img src=x onerror=alert(1)> \\\\[a\\\\](javascript:x) \\\\| b'
    """
    return str(text).translate(_MD)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    return tables.markdown(head, [[md(c) for c in r] for r in rows])


def markdown(data: dict[str, Any]) -> str:
    parts = ["# ftstudy report", "", "## Base vs fine-tuned", "", _md_table(HEAD, table_rows(data)), ""]
    if data.get("cautions"):
        parts += ["## Cautions", ""] + [f"- **{md(e)}**: {md(c)}" for e, c in data["cautions"].items()] + [""]
    if data.get("examples"):
        from ftstudy.study.report_views import EXAMPLE_HEAD, example_rows

        parts += ["## Held-out examples (base vs fine-tuned, where they differ)", "",
                  _md_table(EXAMPLE_HEAD, example_rows(data["examples"])), ""]
    parts += ["## Training cost (measured; planner's prediction and its error in brackets)", "", _md_table(COST, cost_rows(data))]
    parts += ["", "## Cost per point gained", "", cost.NOTE, "", _md_table(cost.HEAD, cost.table_rows(data.get("cost") or []))]
    parts += ["", "## Contamination", "", CONTAM_NOTE, "", _md_table(CONTAM, data.get("contamination") or [])]
    if data["lock"]:
        parts += ["", "## Lock", "", f"What these results depend on: {md(data.get('lock_path') or 'study.lock.json')} "
                  f"({len(data['lock'].get('experiments', {}))} experiment run(s) recorded)."]
    return "\n".join(parts) + "\n"


def page(data: dict[str, Any], images: dict[str, str]) -> str:
    from ftstudy.study.report_views import EXAMPLE_HEAD, example_rows

    figs = "".join(f'<figure class="chart" data-name="{html.escape(k)}">{v}</figure>' for k, v in images.items())
    cautions = "".join(f"<li><b>{html.escape(e)}</b>: {html.escape(c)}</li>" for e, c in data.get("cautions", {}).items())
    cautions = f'<h2>Cautions</h2><ul class="cautions">{cautions}</ul>' if cautions else ""
    ex = data.get("examples") or []
    ex = (f"<h2>Held-out examples</h2><p>Base and fine-tuned outputs where they differ (fixes first, then any item "
          f"the fine-tuning broke).</p>{tables.html(EXAMPLE_HEAD, example_rows(ex), 'examples')}") if ex else ""
    lock = ""
    if data["lock"]:
        where = html.escape(data.get("lock_path") or "study.lock.json")
        lock = (f'<h2>Lock</h2><details class="lock"><summary>What these results depend on '
                f'(<a href="file://{where}">{where}</a>)</summary><pre>{html.escape(json.dumps(data["lock"], indent=1))}'
                f"</pre></details>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ftstudy report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:1280px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}th{{background:#f3f5f7}}
figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}figure svg{{max-width:100%;height:auto}}
table.examples td{{max-width:22em;font-size:12px}}pre{{background:#f6f8fa;padding:1em;overflow:auto;max-height:30em}}</style></head>
<body><h1>ftstudy report</h1>
<h2>Base vs fine-tuned</h2>{tables.html(HEAD, table_rows(data), "results")}
{cautions}
<h2>Charts</h2>{figs or "<p>no results yet</p>"}
{ex}
<h2>Training cost</h2><p>Measured; in brackets the planner's prediction and its error.</p>{tables.html(COST, cost_rows(data), "cost")}
<h2>Cost per point gained</h2><p>{html.escape(cost.NOTE)}</p>{tables.html(cost.HEAD, cost.table_rows(data.get("cost") or []), "cost-per-point")}
<h2>Contamination</h2><p>{html.escape(CONTAM_NOTE)}</p>{tables.html(CONTAM, data.get("contamination") or [], "contamination")}
{lock}</body></html>
"""


def write(root: Path, out_dir: Path, adjust: str | None = None) -> list[Path]:
    """Write report.html and report.md into out_dir; returns their paths."""
    data = collect(root, adjust)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write(html_path, page(data, plots(data)))
    atomic_write(md_path, markdown(data))
    return [html_path, md_path]
