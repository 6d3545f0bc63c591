"""BFCL through bfcl-eval (its own environment): BFCL generates, scores and aggregates; ftstudy serves and reads.

Protocol (bfcl-eval 2026.3.23, BFCL v4): the non-live categories of evals/benchmarks.yaml's `task`. The headline is
BFCL's own non-live AST number, the `AST Summary` column of its score/data_non_live.csv: the unweighted mean of
simple (itself the unweighted mean of Python, Java and JavaScript), multiple, parallel and parallel_multiple.
Irrelevance is a metric of its own (`Irrelevance Detection`), outside the headline, as BFCL reports it.

Serving: ftstudy's server (vLLM on a GPU host, `transformers serve` on CPU) serves the model's local folder, and
BFCL's local-model handler sends its own prompts to its /v1/completions (REMOTE_OPENAI_BASE_URL,
--skip-server-setup), naming the model by --local-model-path: the absolute path the server serves it under. Those
requests cannot apply a LoRA adapter: merge first. The handler is Qwen/Qwen3-8B-FC, whose <tools>/<tool_call>
prompt is Qwen2.5's (BFCL's registry dropped its Qwen2.5 entries in 2025): a deviation the result declares.

Work folder: one BFCL project root per model fingerprint and protocol. `bfcl generate` resumes the answers it finds
there, so a killed run continues at the item, and another model never finds (and is never scored on) these answers.

--limit N: N seeded items of each category, through BFCL's own test_case_ids_to_generate.json (--run-ids) and
`bfcl evaluate --partial-eval`; the result says so.

Samples (one per item): `output` from BFCL's result files, `correct` from its score files (they list the failures),
and `score`, the item's share of the headline: correct x its weight in BFCL's unweighted mean, scaled so that the
mean of the AST items' scores is the headline (None on irrelevance items). The paired bootstrap thus tests the
headline itself, not a micro-average.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ftstudy.core import runner
from ftstudy.core import tool_envs as envs
from ftstudy.core.fsio import atomic_write
from ftstudy.eval import client, records, serve_argv
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable, generative, pick_subset

HANDLER = "Qwen/Qwen3-8B-FC"
SOURCE = "BFCL (bfcl-eval 2026.3.23)"
AGGREGATE = "unweighted mean of non-live AST categories (simple = mean of Python, Java, JavaScript); irrelevance separate"
# Each AST category's weight in BFCL's non-live AST summary (eval_runner_helper.generate_leaderboard_csv).
WEIGHTS = {"simple_python": 1 / 12, "simple_java": 1 / 12, "simple_javascript": 1 / 12,
           "multiple": 1 / 4, "parallel": 1 / 4, "parallel_multiple": 1 / 4}
# ftstudy's metric name -> the column of BFCL's data_non_live.csv it is read from.
COLUMNS = {"non_live_ast": "AST Summary", "irrelevance": "Irrelevance Detection", "simple": "Simple AST"}
FAILED = "Error during inference"  # how `bfcl generate` records the answer of an item whose request failed
DEVIATIONS = ["handler Qwen/Qwen3-8B-FC (the same <tools>/<tool_call> prompt) for Qwen2.5 weights: BFCL's registry "
              "has no Qwen2.5 entry"]


def categories(bench: dict) -> list[str]:
    return [c.strip() for c in bench["task"].split(",") if c.strip()]


def generate_argv(bfcl: str | Path, model_path: str, cats: list[str], run_ids: bool = False,
                  threads: int | None = None) -> list[str]:
    argv = [str(bfcl), "generate", "--model", HANDLER, "--test-category", ",".join(cats), "--skip-server-setup",
            "--local-model-path", model_path]
    return argv + (["--run-ids"] if run_ids else []) + (["--num-threads", str(threads)] if threads else [])


def evaluate_argv(bfcl: str | Path, cats: list[str], partial: bool = False) -> list[str]:
    return [str(bfcl), "evaluate", "--model", HANDLER, "--test-category", ",".join(cats)] + (
        ["--partial-eval"] if partial else [])


def data_dir() -> Path | None:
    """bfcl-eval's bundled items (BFCL_v4_<category>.json, possible_answer/), None when the environment is absent."""
    found = sorted(envs.location("bfcl").glob("lib/python3*/site-packages/bfcl_eval/data"))
    return found[0] if found else None


def item_ids(data: Path, cat: str) -> list[str]:
    lines = (data / f"BFCL_v4_{cat}.json").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines if line.strip()]


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """What would stop BFCL after generation has begun, each as one line: the environment, its items, the model."""
    problems = []
    if ctx.adapter:
        problems.append("bfcl: BFCL's requests cannot apply a LoRA adapter: `ftstudy merge RUN`, then bench RUN/merged")
    try:
        python = envs.bin_path("bfcl")
    except envs.EnvMissing:
        return problems + [f"bfcl: the bfcl environment is not installed at {envs.location('bfcl')}: "
                           "`ftstudy setup bfcl` (or set FTSTUDY_BFCL_ENV)"]
    data = data_dir()
    for cat in categories(bench):
        need = [f"BFCL_v4_{cat}.json"] + ([] if "irrelevance" in cat else [f"possible_answer/BFCL_v4_{cat}.json"])
        missing = [n for n in need if data is None or not (data / n).is_file()]
        if missing:
            problems.append(f"bfcl: no {', '.join(missing)} in bfcl-eval's data ({data}): is {cat!r} a BFCL v4 "
                            "category? rebuild with `ftstudy setup bfcl`")
    if not imports(str(python)):
        problems.append(f"bfcl: bfcl_eval (with its {HANDLER} handler) does not import in {envs.location('bfcl')}: "
                        f"delete that folder and run `ftstudy setup bfcl`")
    local = Path(ctx.model)
    if local.is_dir():
        missing = [n for n in ("config.json", "tokenizer_config.json") if not (local / n).is_file()]
        if missing:
            problems.append(f"bfcl: {local} has no {' or '.join(missing)}, which BFCL loads the tokenizer from")
    running = getattr(getattr(ctx.server_url, "server", None), "url", None)  # the bench's server, when started
    if running and not client.answers(running):
        problems.append(f"bfcl: the model server at {running} does not answer")
    try:
        serve_argv.launch_argv(ctx.model, engine=generative.engine(ctx), port=0)
    except (serve_argv.ServeError, envs.EnvMissing) as exc:
        problems.append(f"bfcl: the model cannot be served: {str(exc).splitlines()[0]}")
    return problems


@functools.cache  # seconds per probe; one per process and environment is enough
def imports(python: str) -> bool:
    """Whether bfcl_eval imports, with its handler registered, as `bfcl` does on start."""
    with tempfile.TemporaryDirectory() as tmp:  # importing bfcl_eval makes result/ and score/ in its project root
        code = f"from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING as m; assert {HANDLER!r} in m"
        return runner.capture([python, "-c", code], env={**os.environ, "BFCL_PROJECT_ROOT": tmp}, timeout=120)[0] == 0


def project_root(ctx: BenchContext, bench: dict, ids: list[str] | None) -> Path:
    """BFCL's project root for this model and protocol: the answers found there are this model's (resumed)."""
    key = {"model": records.fingerprint_of(ctx.model, ctx.adapter), "handler": HANDLER, "task": bench["task"],
           "version": bench["version"], "env": envs.location("bfcl").name, "ids": ids}
    return ctx.work_dir("bfcl") / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def bfcl_env(root: Path) -> dict[str, str]:
    """BFCL's variables: its project root; no hub lookups (every file is local) and no W&B upload of its tables."""
    return {"BFCL_PROJECT_ROOT": str(root), "HF_HUB_OFFLINE": "1", "WANDB_BFCL_PROJECT": ""}


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    if ctx.adapter:
        raise HarnessUnavailable("BFCL needs merged weights: run `ftstudy merge RUN` and bench RUN/merged")
    cats, data = categories(bench), data_dir()
    ids = None
    if ctx.limit:
        if data is None:
            raise HarnessUnavailable("the bfcl environment is not installed: `ftstudy setup bfcl`")
        ids = {c: pick_subset(item_ids(data, c), ctx.limit, ctx.seed) for c in cats}
    root = project_root(ctx, bench, sorted(i for v in ids.values() for i in v) if ids else None)
    env = bfcl_env(root)
    threads = 1 if generative.engine(ctx) == "transformers" else None  # transformers serve answers one at a time
    folder = str(Path(ctx.model).resolve()) if Path(ctx.model).is_dir() else "<hub snapshot folder>"
    gen = generate_argv("<bfcl-env>/bin/bfcl" if ctx.dry_run else envs.bin_path("bfcl", "bfcl"), folder, cats,
                        bool(ids), threads)
    ev = evaluate_argv(gen[0], cats, partial=bool(ids))
    if ctx.dry_run:
        ctx.commands += [gen, ev]
        shown = runner.show(gen, {**env, "REMOTE_OPENAI_BASE_URL": "<server>/v1"}) + "\n" + runner.show(ev, env)
        return HarnessOutput({}, [], settings={"command": shown})
    root.mkdir(parents=True, exist_ok=True)
    log = root / "bfcl.log"
    if ids:  # BFCL's own way to run a subset: the id file in its project root, read by --run-ids
        (root / "test_case_ids_to_generate.json").write_text(json.dumps(ids, indent=1))
    retried = drop_failed(root)
    if not Path(ctx.model).is_dir():
        gen[gen.index("--local-model-path") + 1] = folder = hub_folder(ctx.model, log)
    with serving(ctx, folder) as url:
        env["REMOTE_OPENAI_BASE_URL"] = url + "/v1"
        runner.check(runner.run(gen, env=env, log=log, quiet=True), "bfcl generate", log)
    ctx.commands += [gen, ev]
    out = score(ev, root, cats)
    out.settings.update({"handler": HANDLER, "source": SOURCE, "aggregate": AGGREGATE, "deviations": list(DEVIATIONS)
                         + ([f"--limit {ctx.limit}: {ctx.limit} seeded items per category, bfcl evaluate --partial-eval"]
                            if ids else []), "bfcl_project_root": str(root), "retried_failed_requests": retried,
                         "failed_requests": sum(str(x["output"]).startswith(FAILED) for x in out.samples)})
    out.subset_ids = sorted(s["id"] for s in out.samples) if ids else None
    return out


def drop_failed(root: Path) -> int:
    """Forget the answers whose request failed (a server that died, a timeout), which `bfcl generate` would otherwise
    keep as answered: this run asks again. Returns how many."""
    dropped = 0
    for path in (root / "result").rglob("BFCL_v4_*_result.json"):
        rows = _jsonl(path, path.name)
        keep = [r for r in rows if not str(r.get("result", "")).startswith(FAILED)]
        if len(keep) < len(rows):
            dropped += len(rows) - len(keep)
            atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
    return dropped


def score(argv: list[str], root: Path, cats: list[str]) -> HarnessOutput:
    """`bfcl evaluate` (argv) of the answers under BFCL project root `root`, read back by parse_scores."""
    env = bfcl_env(root)
    shutil.rmtree(root / "score", ignore_errors=True)  # derived from result/ alone: never a stale category
    runner.check(runner.run(argv, env=env, log=root / "bfcl.log", quiet=True), "bfcl evaluate", root / "bfcl.log")
    return parse_scores(root, cats)


def hub_folder(model: str, log: Path) -> str:
    """A hub model's local snapshot folder (downloaded once into the Hugging Face cache): BFCL loads its tokenizer
    from a folder and names the model by that folder's path."""
    code = "import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))"
    res = runner.check(runner.run([envs.bin_path("bfcl"), "-c", code, model], log=log, quiet=True),
                       f"finding {model}'s files for BFCL", log)
    return res.tail[-1].strip()


@contextmanager
def serving(ctx: BenchContext, folder: str) -> Iterator[str]:
    """The base URL of a server of `folder` under its path: the bench's shared server when it serves that folder,
    else one of our own (the shared one stopped first, as a GPU holds one model at a time; its next user restarts it)."""
    shared = ctx.server_url
    if shared is not None and getattr(shared, "model_name", None) == folder:
        with generative.serving(ctx) as (url, _):
            yield url
        return
    if shared is not None and hasattr(shared, "close"):
        shared.close()
    from ftstudy.eval import serve

    with serve.LazyServer(folder, commands=ctx.commands, engine=generative.engine(ctx)) as lazy:
        yield lazy()


def parse_scores(root: Path, cats: list[str]) -> HarnessOutput:
    """BFCL's numbers from BFCL's files: the headline and irrelevance from score/data_non_live.csv, each category's
    accuracy from its score file's header, each item's answer from result/ and its verdict from score/."""
    table = root / "score" / "data_non_live.csv"
    try:
        rows = list(csv.DictReader(table.open(encoding="utf-8")))
    except OSError:
        raise HarnessUnavailable(f"BFCL wrote no {table}") from None
    if len(rows) != 1:
        raise HarnessUnavailable(f"{table} holds {len(rows)} models' rows, not this model's one")
    metrics = {}
    for name, column in COLUMNS.items():
        cell = rows[0].get(column, "N/A")
        if cell.endswith("%"):
            metrics[name] = float(cell[:-1]) / 100
    if "non_live_ast" not in metrics and any(c in WEIGHTS for c in cats):
        raise HarnessUnavailable(f"{table}: no AST Summary (a category was not scored): see {root / 'bfcl.log'}")
    samples = []
    for cat in cats:
        results = _jsonl(next((root / "result").rglob(f"BFCL_v4_{cat}_result.json"), None), cat)
        scored = _jsonl(next((root / "score").rglob(f"BFCL_v4_{cat}_score.json"), None), cat)
        head, failed = scored[0], {str(r["id"]) for r in scored[1:]}
        metrics[f"{cat}.accuracy"] = head["accuracy"]
        rows_c = [{"id": str(r["id"]), "category": cat, "output": r.get("result"),
                   "correct": int(str(r["id"]) not in failed)} for r in results]
        if sum(r["correct"] for r in rows_c) != head["correct_count"] or len(rows_c) != head["total_count"]:
            raise HarnessUnavailable(f"BFCL's {cat} score file does not match its result file under {root}")
        samples += rows_c
    ast = [s for s in samples if s["category"] in WEIGHTS]
    per_cat = {c: sum(1 for s in ast if s["category"] == c) for c in WEIGHTS}
    for s in samples:
        cat = s["category"]
        s["score"] = s["correct"] * WEIGHTS[cat] * len(ast) / per_cat[cat] if cat in WEIGHTS else None
        if "irrelevance" in cat:
            s["irrelevance"] = s["correct"]
    return HarnessOutput(metrics, samples, harness_version=SOURCE)


def _jsonl(path: Path | None, cat: str) -> list[dict]:
    if path is None:
        raise HarnessUnavailable(f"BFCL wrote no result or score file for {cat}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
