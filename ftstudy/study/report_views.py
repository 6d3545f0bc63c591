"""The report's figures and example tables, kept short enough to read: charts as inline SVG (their labels stay
text, so a browser test can check they never overlap), held-out examples base vs fine-tuned side by side.

Example:
    >>> svg = bars([{"experiment": "e", "method": "lora", "benchmark": "b", "base": 0.2, "ft": 0.6,
    ...              "ci_low": 0.3, "ci_high": 0.5, "status": "ok"}])
    >>> svg.startswith("<svg")
    True
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ftstudy.core.names import is_safe
from ftstudy.eval import records

BASE_C, FT_C = "#9aa5b1", "#2f6fde"


def _svg(fig) -> str:
    """The figure as an inline <svg> element: text kept as text, no XML prolog, no fixed pixel ids."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "ftstudy", "font.size": 8})
    return plt


def _label(r: dict) -> str:
    return f"{r['experiment']} · {r['method']} · {r['benchmark']}"


def bars(rows: list[dict]) -> str:
    """Before/after, one horizontal pair of bars per row (labels on the y axis cannot collide); the whisker on
    the fine-tuned bar is the paired 95% CI of the gain, drawn from the base score."""
    plt = _plt()
    ok = [r for r in rows if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(6.2, 0.45 + 0.5 * len(ok)))
    ys = list(range(len(ok)))[::-1]
    ax.barh([y + 0.2 for y in ys], [r["base"] for r in ok], 0.38, color=BASE_C, label="base")
    lo = [max(0.0, r["ft"] - (r["base"] + r.get("ci_low", r["delta"] if "delta" in r else 0))) for r in ok]
    hi = [max(0.0, (r["base"] + r.get("ci_high", r.get("delta", 0))) - r["ft"]) for r in ok]
    ax.barh([y - 0.2 for y in ys], [r["ft"] for r in ok], 0.38, color=FT_C, label="fine-tuned (95% CI of the gain)",
            xerr=[lo, hi], error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "#222"})
    ax.set_yticks(ys, [_label(r) for r in ok])
    ax.set_xlabel("score")
    ax.set_title("Before / after", loc="left")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=7)
    return _svg(fig)


def delta_vs_plan(rows: list[dict]) -> str | None:
    """Measured gain (dot, CI whiskers) beside the plan's expected gain range (grey band), one line per row."""
    planned = [r for r in rows if r.get("status") == "ok" and (r.get("plan") or {}).get("expected_gain")]
    if not planned:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 0.5 + 0.45 * len(planned)))
    ys = list(range(len(planned)))[::-1]
    for y, r in zip(ys, planned):
        lo, hi = r["plan"]["expected_gain"]
        ax.barh(y, hi - lo, 0.5, left=lo, color="#dde3ea")
        err = [[r["delta"] - r.get("ci_low", r["delta"])], [r.get("ci_high", r["delta"]) - r["delta"]]]
        ax.errorbar([r["delta"]], [y], xerr=err, fmt="o", color=FT_C, capsize=3, lw=1)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_yticks(ys, [_label(r) for r in planned])
    ax.set_xlabel("gain (fine-tuned - base): grey = the plan's expected range, dot = measured with 95% CI")
    ax.set_title("Measured gain vs the plan", loc="left")
    return _svg(fig)


def loss(runs: list[dict]) -> str | None:
    curves = [r for r in runs if r.get("loss_curve")]
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 2.6))
    for r in curves:
        steps, losses = zip(*r["loss_curve"])
        ax.plot(steps, losses, label=f"{r['experiment']} · {r['method']}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Loss curves", loc="left")
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def _inputs(record: dict) -> dict[str, tuple[str, Any]]:
    """The benchmark items' input text and reference answer by id, when the result names a local data folder
    holding its task (`<task>.jsonl`: rows with an `id`, or by position; text from `query`, `text`, `prompt` or
    `instruction`, reference from `answers`, `reference` or `label`)."""
    out: dict[str, tuple[str, Any]] = {}
    if not is_safe(record.get("task")):  # a hand-edited result's task never leads the report to another file
        return out
    path = Path(str(record.get("data_dir") or "")) / f"{record.get('task')}.jsonl"
    try:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                row = json.loads(line)
                text = next((row[k] for k in ("query", "text", "prompt", "instruction") if isinstance(row.get(k), str)), None)
                ref = next((row[k] for k in ("answers", "reference", "label") if k in row), "")
                if text is not None:
                    out[str(row.get("id", i))] = (text, ref)
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    return out


def _choices(record: dict) -> list[str]:
    """A local multiple-choice task's choice names (evals/tasks/<task>.yaml `doc_to_choice` as a list), so that
    an item shows `Sports`, not `1`; empty when the task has none."""
    import yaml

    from ftstudy.core.bundled import evals_dir
    from ftstudy.data.decontam.items import task_yaml

    if not is_safe(record.get("task")):
        return []
    try:
        task = task_yaml(evals_dir() / "tasks" / f"{record.get('task')}.yaml")
        choices = task.get("doc_to_choice")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return []
    return [str(c) for c in choices] if isinstance(choices, list) else []


def protocol_note(bench_id: str) -> str:
    """What stands beside a benchmark's number: its protocol and every declared deviation (evals/benchmarks.yaml),
    so that nobody reads a number under a public name without knowing how it was made.

    Example:
        >>> protocol_note("mmlu").startswith(" [5-shot, no chat template")
        True
    """
    from ftstudy.config import protocol, registry

    try:
        p = registry.benchmark(bench_id)["protocol"]
    except registry.UnknownName:
        return ""
    return " [" + "; ".join([protocol.summary(p)] + protocol.deviation_lines(p)) + "]"


def _named(v: Any, choices: list[str]) -> Any:
    return choices[int(v)] if choices and str(v).isdigit() and int(v) < len(choices) else v


def _short(v: Any, n: int = 140) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def examples(results: Path, rows: list[dict], per_experiment: int = 3) -> list[dict]:
    """A few held-out items per experiment where the base and fine-tuned outputs differ: fixes first, then any
    item the fine-tuning broke (shown too, so the examples are not cherry-picked), by item id order."""
    out, seen = [], set()
    for r in rows:
        if r.get("status") != "ok" or r["experiment"] in seen:
            continue
        base_p, _ = records.paths(results, r["experiment"], "base", r["benchmark"])
        ft_p, _ = records.paths(results, r["experiment"], r["method"], r["benchmark"])
        try:
            base_s = {str(s["id"]): s for s in records.load_samples(base_p)}
            ft_s = {str(s["id"]): s for s in records.load_samples(ft_p)}
            rec = records.read_record(ft_p)
            inputs, choices = _inputs(rec), _choices(rec)
        except (OSError, ValueError, KeyError):
            continue
        differ = [i for i in sorted(ft_s, key=lambda k: (len(k), k))
                  if i in base_s and base_s[i].get("output") != ft_s[i].get("output")]
        fixed = [i for i in differ if (ft_s[i].get("score") or 0) > (base_s[i].get("score") or 0)]
        broke = [i for i in differ if (ft_s[i].get("score") or 0) < (base_s[i].get("score") or 0)]
        pick = fixed[: per_experiment - 1 if broke else per_experiment] + broke[:1]
        if not pick:
            continue
        seen.add(r["experiment"])
        for i in pick:
            b, f = base_s[i], ft_s[i]
            out.append({"experiment": r["experiment"], "method": r["method"], "benchmark": r["benchmark"], "id": i,
                        "input": _short(inputs.get(i, ("", ""))[0]),
                        "target": _short(_named(f.get("target", f.get("reference", inputs.get(i, ("", ""))[1])), choices)),
                        "base": f"{_short(_named(b.get('output'), choices))} ({_score(b)})",
                        "ft": f"{_short(_named(f.get('output'), choices))} ({_score(f)})"})
    return out


def _score(sample: dict) -> str:
    s = sample.get("score")
    return "-" if s is None else f"score {s:g}"


EXAMPLE_HEAD = ["experiment", "item", "input", "expected", "base output", "fine-tuned output"]


def example_rows(items: list[dict]) -> list[list[str]]:
    return [[f"{e['experiment']} · {e['method']}", e["id"], e["input"] or "-", e["target"] or "-", e["base"], e["ft"]]
            for e in items]
