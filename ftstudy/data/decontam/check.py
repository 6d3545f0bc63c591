"""The decontamination check for one experiment: `ftstudy decontaminate EXP`, and the hook `prepare` calls.

Every benchmark of the experiment (primary, secondary, guards) is loaded by its own loader
(ftstudy/data/decontam/items.py) and indexed (ftstudy/data/decontam/ngrams.py); a benchmark whose items cannot be loaded is
"not checked", never clean. The figures are one dict per experiment, the same shape everywhere they are kept
(prepare's manifests and report, the study state, study.lock.json, the report):

    {"ngram": 13, "action": "dropped" | "kept" | "measured", "rows_scanned": 395000,
     "benchmarks": {"gsm8k": {"status": "checked", "items": 1319, "where": "hub:openai/gsm8k/main:test",
                              "rows": 12, "examples": [{"source", "line", "item", "ngram"}, ...]},
                    "math": {"status": "not checked", "reason": "..."}}}

Example:
    $ ftstudy decontaminate math --data-dir staged/ --json
    >>> summary = check("classification", data=["tests/fixtures/ag_news.jsonl"], progress=lambda m: None)  # doctest: +SKIP
    >>> summary["benchmarks"]["ag_news"]["status"]   # doctest: +SKIP
    'not checked'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ftstudy.data.decontam import ngrams as decontam
from ftstudy.config import registry
from ftstudy.data.decontam.items import load


@dataclass
class Check:
    """One experiment's benchmark index and what was (not) loaded for each benchmark."""

    experiment: str
    index: decontam.Index
    benchmarks: dict[str, dict] = field(default_factory=dict)

    @property
    def checked(self) -> list[str]:
        return [b for b, s in self.benchmarks.items() if s["status"] == "checked"]


def build(exp_id: str, data_dir: str | Path | None = None, ngram: int | None = None,
          progress: Callable[[str], None] = print) -> Check:
    """Load and index every benchmark of the experiment (n-grams of `ngram` words, default 13)."""
    exp = registry.experiment(exp_id)
    chk = Check(exp.id, decontam.Index(ngram=ngram or decontam.DEFAULT_NGRAM))
    for bid in exp.all_benchmarks:
        items = load(bid, data_dir)
        if items.checked and not items.rows:
            items.rows, items.reason = None, f"no items in {items.where}"
        if items.checked:
            n = chk.index.add(bid, items.rows, items.skip)
            chk.benchmarks[bid] = {"status": "checked", "items": n, "where": items.where}
            progress(f"  decontamination: {bid}: {n:,} items from {items.where}")
        else:
            chk.benchmarks[bid] = {"status": "not checked", "reason": items.reason}
            progress(f"  decontamination: {bid}: NOT CHECKED - {items.reason}")
    return chk


def _figures(chk: Check, rows: int, hits: dict[int, list], source: str, action: str) -> dict[str, Any]:
    counts = decontam.tally(hits, source, chk.checked)
    benches = {b: ({**s, **counts[b]} if s["status"] == "checked" else dict(s)) for b, s in chk.benchmarks.items()}
    return {"ngram": chk.index.ngram, "min_words": chk.index.min_words, "action": action, "rows_scanned": rows,
            "rows_contaminated": len(hits), "benchmarks": benches}


def apply(chk: Check, res, source: str, keep: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """prepare's hook: scan the converted rows in `res.tmp` (a convert_stream.StreamResult) and, unless `keep`,
    rewrite it without the contaminated rows, updating `res.converted` and `res.output_sha256`."""
    rows, hits = decontam.scan_file(Path(res.tmp), chk.index)
    if hits and not keep:
        res.converted, res.output_sha256 = decontam.drop_lines(Path(res.tmp), set(hits))
    out = _figures(chk, rows, hits, source, "kept" if keep else "dropped")
    if hits:
        per = ", ".join(f"{b} {v['rows']}" for b, v in out["benchmarks"].items() if v.get("rows"))
        progress(f"  {source}: {len(hits):,} row(s) share a {chk.index.ngram}-gram with a benchmark item ({per}): "
                 + ("KEPT (--keep-contaminated)" if keep else "dropped"))
    return out


def merge(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The experiment's figures from its sources' (rows and examples summed per benchmark)."""
    if not parts:
        return None
    out = {k: parts[0][k] for k in ("ngram", "min_words", "action")}
    out["rows_scanned"] = sum(p["rows_scanned"] for p in parts)
    out["rows_contaminated"] = sum(p["rows_contaminated"] for p in parts)
    benches: dict[str, dict] = {}
    for p in parts:
        for b, v in p["benchmarks"].items():
            t = benches.setdefault(b, {**v, "rows": 0, "examples": []} if v["status"] == "checked" else dict(v))
            if v["status"] == "checked":
                t["rows"] += v["rows"]
                t["examples"] = (t["examples"] + v["examples"])[:decontam.EXAMPLES]
    out["benchmarks"] = benches
    return out


def check(exp_id: str, data: list[str] | tuple[str, ...] = (), ngram: int | None = None,
          data_dir: str | Path | None = None, raw_root: Path = Path("data/raw"),
          progress: Callable[[str], None] = print) -> dict[str, Any]:
    """`ftstudy decontaminate`: measure every source's rows (all of them, as prepare reads them) against
    every benchmark; writes nothing but the hub copies prepare would make under data/raw/."""
    from ftstudy.config import gen
    from ftstudy.data.sources import local_input

    exp = registry.experiment(exp_id)
    gen.dataset_entries(exp, data)
    chk = build(exp.id, data_dir, ngram, progress)
    parts = []
    for i, src in enumerate(exp.active_sources):
        spec = data[i] if i < len(data) else None
        name = gen.source_name(src, spec)
        path, _ = local_input(src, spec, raw_root / exp.id / f"{name}.jsonl", progress)
        rows, hits = decontam.scan_file(path, chk.index)
        parts.append(_figures(chk, rows, hits, name, "measured"))
    return {"experiment": exp.id, **merge(parts)}


def left_in(fig: dict[str, Any] | None) -> dict[str, int]:
    """Benchmarks whose contaminated rows stayed in the training data (--keep-contaminated), with the count."""
    if not fig or fig.get("action") != "kept":
        return {}
    return {b: v["rows"] for b, v in fig["benchmarks"].items() if v.get("rows")}


def cell(v: dict) -> str:
    """One benchmark's figure in a word or two: 'clean', '12 dropped', '12 KEPT', 'not checked'."""
    if v["status"] != "checked":
        return "not checked"
    return "clean" if not v["rows"] else f"{v['rows']:,} rows"


def lines(fig: dict[str, Any] | None) -> list[str]:
    """The figures as text (prepare's summary, `decontaminate`, `show`)."""
    if not fig:
        return ["contamination: not measured (run `ftstudy prepare` or `ftstudy decontaminate`)"]
    verb = {"dropped": "dropped", "kept": "KEPT in the training data (--keep-contaminated)", "measured": "found"}[fig["action"]]
    out = [f"contamination ({fig['ngram']}-gram overlap, {fig['rows_scanned']:,} training rows scanned): "
           f"{fig['rows_contaminated']:,} row(s) {verb}"]
    for b, v in fig["benchmarks"].items():
        if v["status"] != "checked":
            out.append(f"  {b:20} not checked: {v.get('reason', '')}")
            continue
        out.append(f"  {b:20} {v['rows']:>7,} row(s) of {v['items']:,} items' n-grams ({v['where']})")
        for e in v["examples"]:
            out.append(f"  {'':20}   e.g. {e['source']}:{e['line']} ~ item {e['item']}: \"{e['ngram'][:90]}\"")
    return out


def from_manifests(paths: list[str | Path]) -> dict[str, Any] | None:
    """The figures of prepared files, read back from their manifests (None when one was prepared without them)."""
    from ftstudy.core.fsio import read_json

    parts = []
    for p in paths:
        m = Path(p).with_suffix(".manifest.json")
        fig = read_json(m).get("contamination") if m.is_file() else None
        if fig is None:
            return None
        parts.append(fig)
    return merge(parts)


def from_state(root: Path, exp: str, method: str | None = None) -> dict[str, dict]:
    """Figures recorded by `ftstudy run` under root/state/<exp>/<method>-<hardware>.json, by file stem (each
    state file checked against its schema: a hand-edited one fails in one line naming it and the field)."""
    from ftstudy.core import checked_json
    from ftstudy.core.names import safe_name, under

    out = {}
    folder = under(Path(root) / "state", "{experiment}", experiment=exp)
    if method is not None:
        safe_name(method, "tag")
    for path in sorted(folder.glob(f"{method or '*'}-*.json")):
        fig = ((checked_json.read(path, "state").get("prepare") or {}).get("output") or {}).get("contamination")
        if fig:
            out[path.stem] = fig
    return out


def short(fig: dict[str, Any] | None) -> str:
    """One line for `status`: each benchmark's figure."""
    if not fig:
        return "contamination: not measured"
    verb = {"dropped": "dropped", "kept": "KEPT", "measured": "found"}[fig["action"]]
    cells = [f"{b} {cell(v)}" + (f" {verb}" if v.get("rows") else "") for b, v in fig["benchmarks"].items()]
    return "contamination: " + ", ".join(cells)


def mark(fig: dict[str, Any] | None, bench: str) -> dict[str, Any] | None:
    """The comparison's contamination field: set only where contaminated rows were left in the training data."""
    rows = left_in(fig).get(bench)
    if not rows:
        return None
    return {"rows": rows, "ngram": fig["ngram"],
            "note": f"contamination left in: {rows} training row(s) share a {fig['ngram']}-gram with {bench} items"}


def annotate(rows: list[dict[str, Any]], results_root: Path, exp: str, ft_tag: str) -> list[dict[str, Any]]:
    """Mark comparisons on benchmarks whose contaminated rows the fine-tuned model trained on (figures from the
    study state beside results_root): a separate `contamination` field, and a note after the verdict."""
    figs = list(from_state(Path(results_root).parent, exp, ft_tag).values())
    for r in rows:
        m = next(filter(None, (mark(f, r["benchmark"]) for f in figs)), None)
        if m and r.get("status") == "ok":
            r["contamination"] = m
            r["verdict"] = f"{r['verdict']} [{m['note']}]"
    return rows


def report_rows(root: Path) -> list[list[str]]:
    """The report's contamination table: experiment, run, benchmark, status, items, rows, action, an example."""
    out = []
    for exp_dir in sorted(p for p in (Path(root) / "state").glob("*") if p.is_dir()):
        for run, fig in from_state(root, exp_dir.name).items():
            for b, v in fig["benchmarks"].items():
                if v["status"] != "checked":
                    out.append([exp_dir.name, run, b, "not checked", "-", "-", "-", v.get("reason", "")[:160]])
                    continue
                ex = v["examples"][0] if v["examples"] else None
                out.append([exp_dir.name, run, b, "checked", f"{v['items']:,}", f"{v['rows']:,}",
                            fig["action"] if v["rows"] else "-",
                            f"{ex['source']}:{ex['line']} \"{ex['ngram'][:80]}\"" if ex else "-"])
    return out
