"""`ftstudy prepare`: turn an experiment's sources into the JSONL files its Axolotl configs read.

For each active source (or the user's --data, replacing sources in order, named as `gen.source_name` names
them so the paths match the generated configs): read the rows from a local JSONL/JSON/parquet file or the hub
(data/sources.py),
keep a seeded selection of at most the source's row budget, convert each row (ftstudy/data/converters/common.py) on every core,
and write `data/prepared/<exp>/<name>.jsonl` atomically with `<name>.manifest.json` beside it. Then, when a
tokenizer is given, count tokens with Axolotl's own preprocess (ftstudy/data/token_counts.py) and stop when a source's
rows are all longer than sequence_len.

Row budget per source: its `cap` (None: every row). With --limit N the experiment's N rows are shared by the
sources' mixture weights, round(N * w / sum(w)), and each share is still capped. The selection is the k rows
whose keyed hash of (experiment seed, experiment, source name, line number) is smallest: the same command
gives the same rows, and memory stays O(k).

Malformed rows are reported as `file:line: reason` (for hub, parquet and JSON-array inputs, the line of the
JSONL copy under data/raw/<exp>/); the run stops unless skip_bad, which drops, counts and records them.

Example:
    >>> r = prepare("classification", data=["tests/fixtures/ag_news.jsonl"], limit=16,
    ...             out_root=Path("/tmp/ftstudy-doc"), progress=lambda m: None)
    >>> r.sources[0].converted, r.sources[0].path.name
    (16, 'ag_news-54b754c4.jsonl')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ftstudy import __version__
from ftstudy.config import gen
from ftstudy.config import registry
from ftstudy.data import token_counts as tokens
from ftstudy.data.sources import PrepareError, local_input
from ftstudy.data.stream import commit, convert_file, discard
from ftstudy.core.fsio import read_json, write_json
from ftstudy.core.names import under
from ftstudy.config.row_formats import SHAPES

DEFAULT_OUT = Path(gen.PREPARED_DIR)
SHOWN = 10  # malformed rows listed in the error


@dataclass
class SourceReport:
    name: str
    hub: str
    shape: str
    converter: str
    input: dict[str, Any]
    path: Path
    budget: int | None
    rows_read: int = 0
    selected: int = 0
    converted: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, Any] | None = None
    contamination: dict[str, Any] | None = None

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        cap = f" (budget {self.budget:,})" if self.budget is not None else ""
        def why(counts: dict[str, int]) -> str:
            return f" ({', '.join(f'{k}: {v}' for k, v in counts.items())})" if counts else ""

        return (f"{self.name}: read {self.rows_read:,} · selected {self.selected:,}{cap} · converted {self.converted:,}"
                f" · dropped {self.malformed} malformed{why(self.malformed_by_reason)}, {skipped} without an example"
                f"{why(self.skipped)}")


@dataclass
class PrepareReport:
    experiment: str
    seed: int
    out_dir: Path
    sources: list[SourceReport]
    sequence_len: int | None = None
    tokens_note: str | None = None
    contamination: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        """The summary printed at the end: counts, tokens and packing efficiency per source."""
        out = [f"{self.experiment}: {len(self.sources)} source(s) in {self.out_dir} (seed {self.seed})"]
        for s in self.sources:
            out.append("  " + s.line())
            t = s.tokens
            if t:
                packed = f", {t['packed']:.1%} packed into {t['bins']:,} sequence(s)" if t["packed"] is not None else \
                    " (preference rows: DPO does not pack)"
                out.append(f"    tokens {t['tokens']:,} (max {t['max_len']:,}, mean {t['mean_len']:,}) · too long for "
                           f"sequence_len={t['sequence_len']}: {t['too_long']} · efficiency {t['padded']:.1%} padded{packed}")
        if self.tokens_note:
            out.append(f"  {self.tokens_note}")
        if self.contamination is not None:
            from ftstudy.data.decontam.check import lines
            out += ["  " + line for line in lines(self.contamination)]
        return out


def budgets(sources: list[registry.Source], limit: int | None) -> list[int | None]:
    """Rows wanted from each source: its cap, and with a limit its weight's share of the limit (also capped).

    Example:
        >>> budgets(registry.experiment("math").active_sources, 100)   # weights 0.9 / 0.1
        [90, 10]
    """
    total = sum(s.weight for s in sources) or 1.0
    out: list[int | None] = []
    for s in sources:
        b = s.cap
        if limit is not None:
            share = max(1, round(limit * s.weight / total))
            b = share if b is None else min(b, share)
        out.append(b)
    return out


def _manifest(exp: registry.Experiment, src: registry.Source, rep: SourceReport, res, salt: str,
              limit: int | None) -> dict[str, Any]:
    return {
        "ftstudy_version": __version__, "experiment": exp.id, "seed": exp.seed,
        "source": {"id": src.id, "hub": src.hub, "config": src.config, "split": src.split, "shape": src.shape,
                   "converter": rep.converter, "weight": src.weight, "cap": src.cap},
        "input": {**rep.input, "sha256": res.input_sha256},
        "selection": {"budget": rep.budget, "limit": limit, "salt": salt,
                      "rule": "rows with the smallest keyed BLAKE2b hash of their line number"},
        "counts": {"rows_read": rep.rows_read, "selected": rep.selected, "converted": rep.converted,
                   "malformed": rep.malformed, "malformed_by_reason": rep.malformed_by_reason,
                   "skipped": rep.skipped},
        "output": {"path": rep.path.name, "sha256": res.output_sha256, "rows": rep.converted},
        "tokens": None,
    }


def _refuse_other_source(path: Path, src: registry.Source) -> None:
    """A prepared file is one source's: never replace another source's rows with this one's."""
    man = path.with_suffix(".manifest.json")
    if not man.is_file():
        return
    try:
        had = read_json(man).get("source", {})
    except (OSError, ValueError):
        return  # an unreadable manifest is rewritten with the file it describes
    if had.get("id", src.id) != src.id or had.get("hub", src.hub) != src.hub:
        raise PrepareError(f"{path} holds source {had.get('id') or had.get('hub')!r}, not {src.id!r}: refusing to "
                           f"overwrite another source's prepared rows. Remove {path.parent} or prepare into another folder.")


def _malformed_error(bad: list[SourceReport]) -> PrepareError:
    total = sum(r.malformed for r in bad)
    lines = [f"{total} malformed row(s); nothing was written for {', '.join(r.name for r in bad)}:"]
    shown = [e for r in bad for e in r.malformed_examples][:SHOWN]
    lines += [f"  {e}" for e in shown]
    if total > len(shown):
        lines.append(f"  ... and {total - len(shown)} more")
    lines.append("Fix the rows, or rerun with --skip-bad to drop them (the count is printed and kept in the manifest).")
    return PrepareError("\n".join(lines))


def prepare(exp_id: str, data: list[str] | tuple[str, ...] = (), limit: int | None = None,
            out_root: Path = DEFAULT_OUT, skip_bad: bool = False, tokenizer: str | None = None,
            sequence_len: int | None = None, progress: Callable[[str], None] = print, *,
            base_model: str | None = None, hardware: str | None = None, workers: int | None = None,
            sources: list[str] | tuple[str, ...] = (), bench_data_dir: str | Path | None = None,
            ngram: int | None = None, keep_contaminated: bool = False, count_tokens: bool = True) -> PrepareReport:
    """Prepare one experiment's training data; see the module docstring. Returns the report it printed.

    `tokenizer` (or `base_model`, the same thing as `gen --base-model` names it) enables token counting with
    that model's tokenizer through Axolotl, unless `count_tokens` is false (--no-count-tokens); `hardware` picks the profile whose config is measured (default
    dgx-spark) and `sequence_len` overrides the config's. Rows sharing an n-gram with a benchmark item (items
    from `bench_data_dir` or the hub) are dropped unless `keep_contaminated` (ftstudy/data/decontam/check.py).
    """
    exp = registry.experiment(exp_id)
    gen.dataset_entries(exp, data, sources)  # refuses more --data than sources, or two sources in one file
    out_dir = under(out_root, "{experiment}", experiment=exp.id)
    raw_dir = under(Path(out_root).parent / "raw", "{experiment}", experiment=exp.id)
    chosen = exp.select(sources)
    reports, bad = [], []
    from ftstudy.data.decontam import check as decontam_check

    check = decontam_check.build(exp.id, bench_data_dir, ngram, progress)
    for i, (src, budget) in enumerate(zip(chosen, budgets(chosen, limit))):
        spec = data[i] if i < len(data) else None
        name = gen.source_name(src, spec)
        _refuse_other_source(out_dir / f"{name}.jsonl", src)
        path, input_info = local_input(src, spec, raw_dir / f"{name}.jsonl", progress)
        salt = f"{exp.seed}/{exp.id}/{name}"
        rep = SourceReport(name, src.hub, src.shape, SHAPES[src.shape]["convert"], input_info, out_dir / f"{name}.jsonl",
                           budget)
        res = convert_file(path, rep.path, src.shape, k=budget, salt=salt, workers=workers)
        rep.rows_read, rep.selected, rep.converted, rep.malformed = res.rows_read, res.selected, res.converted, res.malformed
        rep.malformed_examples = [f"{path}:{line}: {reason}" for line, reason in res.examples]
        rep.malformed_by_reason, rep.skipped = dict(res.malformed_by_reason), dict(res.skipped)
        progress(f"  {name}: {res.converted:,} of {res.selected:,} selected rows converted ({path})")
        if rep.malformed and not skip_bad:
            discard(res)
            bad.append(rep)
            continue
        rep.contamination = decontam_check.apply(check, res, name, keep_contaminated, progress)
        rep.converted = res.converted
        if not res.converted:
            discard(res)  # an empty file would pass here and fail deep inside the trainer
            raise PrepareError(f"{name}: no training rows left from {path} ({rep.line()})")
        commit(res, rep.path)
        write_json(rep.path.with_suffix(".manifest.json"),
                   {**_manifest(exp, src, rep, res, salt, limit), "contamination": rep.contamination})
        reports.append(rep)
    if bad:
        raise _malformed_error(bad)
    report = PrepareReport(exp.id, exp.seed, out_dir, reports,
                           contamination=decontam_check.merge([r.contamination for r in reports]))
    model = tokenizer or base_model
    if not count_tokens:
        report.tokens_note = "tokens not counted (--no-count-tokens)"
    elif model:
        _count_tokens(exp, report, data, model, hardware, sequence_len, progress, sources)
    else:
        report.tokens_note = "tokens not counted (no tokenizer given: pass --base-model)"
    for line in report.lines():
        progress(line)
    return report


def _count_tokens(exp, report: PrepareReport, data, model: str, hardware: str | None, sequence_len: int | None,
                  progress, sources=()) -> None:
    """Measure every source with Axolotl's preprocess; record stats in report and manifests; refuse all-too-long."""
    from ftstudy.core.tool_envs import EnvMissing

    overrides = {"sequence_len": sequence_len} if sequence_len else None
    cfg = gen.build(exp.id, None, hardware or gen.DEFAULT_HARDWARE, model, tuple(data), overrides, tuple(sources))
    for entry, rep in zip(cfg["datasets"], report.sources):
        entry["path"] = str(rep.path.resolve())  # measure the files just written, wherever out_root is
    report.sequence_len = cfg["sequence_len"]
    try:
        result = tokens.count([cfg], progress)[0]
    except EnvMissing as exc:
        report.tokens_note = f"tokens not counted: {str(exc).splitlines()[0]}"
        return
    lengths = result["lengths"]
    if len(lengths) != sum(r.converted for r in report.sources):
        report.tokens_note = (f"Axolotl kept {len(lengths)} of {sum(r.converted for r in report.sources)} rows for reasons "
                              "other than length; per-source token figures are not shown")
        return
    start = 0
    for rep in report.sources:
        mine = lengths[start:start + rep.converted]
        start += rep.converted
        st = tokens.stats(mine, cfg["sequence_len"])
        rep.tokens = st.as_dict()
        man = rep.path.with_suffix(".manifest.json")
        write_json(man, {**read_json(man), "tokens": {**rep.tokens, "tokenizer": model}})
        try:
            tokens.check_not_all_too_long(st, str(rep.path), mine)
        except tokens.TooLong as exc:
            # Removed, so that `train` (which prepares only missing files) cannot start on rows it would drop.
            rep.path.unlink(missing_ok=True)
            man.unlink(missing_ok=True)
            raise PrepareError(f"{exc} The file was removed so that training cannot start on it.") from None

