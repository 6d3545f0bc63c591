"""lm-evaluation-harness, run in the eval environment: `hf` backend on CPU, `vllm` on GPU hosts.

Every model of a study is scored with the same settings and on the same items: shots, chat template, split and
item count come from the benchmark's protocol (evals/benchmarks.yaml, ftstudy/config/protocol.py), and `--limit`
becomes a seeded subset passed as `--samples`, never "the first N".

With `data_dir`, a local task reads `<data_dir>/<task>.jsonl` (the benchmark's hub rows) through an overlay
that includes its YAML and changes only where the rows come from, so tests and offline users need no hub.

A run resumes at the request: lm-eval's request cache (`use_cache`, sqlite) lives in the benchmark's work folder
under a name made of the model's fingerprint and the protocol, so a killed run recomputes none of its finished
requests and two models never share answers.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ftstudy.core import tool_envs as envs
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable, pick_subset
from ftstudy.core.bundled import evals_dir
from ftstudy.core import runner
from ftstudy.core.fsio import atomic_write
from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.eval import records

TASKS_DIR = "tasks"
RUNNER = TOOL_SCRIPTS / "lmeval_run.py"


def model_args(ctx: BenchContext, backend: str) -> str:
    """The --model_args string; an adapter rides on the base model (hf: peft=, vllm: lora_local_path=)."""
    args = [f"pretrained={ctx.model}"]
    if backend == "hf":
        args.append("dtype=float32" if ctx.device == "cpu" else "dtype=bfloat16")
        if ctx.adapter:
            args.append(f"peft={ctx.adapter}")
    else:
        args += ["dtype=bfloat16", "gpu_memory_utilization=0.85"]
        if ctx.adapter:
            rank = json.loads((Path(ctx.adapter) / "adapter_config.json").read_text()).get("r", 16)
            args += ["enable_lora=True", f"max_lora_rank={max(16, rank)}", f"lora_local_path={ctx.adapter}"]
    return ",".join(args)


def spec(ctx: BenchContext, bench: dict, out: Path, include: Path | None,
         samples: dict[str, list[int]] | None, cache: Path | None = None) -> dict[str, Any]:
    """The lm-eval settings of one run (pure: tests assert it). The same for every model of a study: shots and
    chat template are the protocol's (a null shot count leaves each subtask its own default)."""
    backend = "hf" if ctx.device == "cpu" else "vllm"
    shots, chat = bench["protocol"]["shots"], bench["protocol"]["chat_template"]
    return {
        "model": backend, "model_args": model_args(ctx, backend), "tasks": [bench["task"]],
        "output_path": str(out), "seed": ctx.seed, "device": ctx.device, "num_fewshot": shots,
        # a tiny model on CPU is bound by per-batch overhead, a 7B on GPU by memory: vLLM sizes its own batches
        "batch_size": "auto" if backend == "vllm" else 32,
        "apply_chat_template": chat, "fewshot_as_multiturn": bool(chat and shots),
        "include_path": str(include) if include else None, "local_only": bool(bench.get("local_task") and not bench.get("builtin_subtasks")),
        "samples": samples, "confirm_run_unsafe_code": bool(bench.get("code_execution") and ctx.allow_code_execution),
        "gen_kwargs": bench.get("gen_kwargs"), "predict_only": bool(bench.get("predict_only")),
        "use_cache": str(cache) if cache else None,
    }


def cache_path(work: Path, fingerprint: str, bench: dict, engine: str = "") -> Path:
    """lm-eval's request cache of one model under one protocol (lm-eval keys its entries by the request alone, so
    the model, how it runs (backend, dtype: `engine`) and the protocol are in the file name; lm-eval appends
    `_rank0.db`).

    Example:
        >>> cache_path(Path("w"), "dir:ab12", {"task": "mmlu", "version": 2, "protocol": {"shots": 5}}).parent
        PosixPath('w/request_cache')
    """
    key = json.dumps([bench["task"], bench["version"], bench["protocol"], engine], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return work / "request_cache" / f"{fingerprint.replace(':', '-')}-{digest}"


def lm_eval_argv(python: str | Path, spec_path: Path) -> list[str]:
    """The exact command: lm-eval's Python API driven by tool_env_scripts/lmeval_run.py from a spec file."""
    return [str(python), str(RUNNER), str(spec_path)]


def local_overlay(bench: dict, data_dir: Path | None, work: Path) -> tuple[Path | None, int | None]:
    """Include path for a local task; with data_dir, a copy of its YAML that reads <data_dir>/<task>.jsonl.
    Returns (include dir, number of docs when known)."""
    if not bench.get("local_task"):
        return None, None
    src = evals_dir() / TASKS_DIR / f"{bench['task']}.yaml"
    if data_dir is None or bench.get("builtin_subtasks"):  # a group of built-in tasks reads the staged HF cache
        return src.parent, None
    data = Path(data_dir) / f"{bench['task']}.jsonl"
    if not data.is_file() and staged_hf_env(data_dir):  # no rows of its own: its hub dataset in the staged HF cache
        return src.parent, None
    if not data.is_file():
        raise HarnessUnavailable(f"--data-dir {data_dir}: {data.name} is missing (the {bench['id']} test rows, "
                                 "one JSON object per line in the hub's row shape)")
    # `include` keeps the task's prompt and its `!function` hooks (resolved beside the original YAML)
    task = {"include": str(src.resolve()), "task": bench["task"], "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": {"test": str(data.resolve())}}, "test_split": "test",
            "validation_split": None, "training_split": None}
    overlay = work / "tasks"
    overlay.mkdir(parents=True, exist_ok=True)
    atomic_write(overlay / src.name, yaml.safe_dump(task, sort_keys=False))
    return overlay, count_docs(bench, data)


def count_docs(bench: dict, data: Path) -> int:
    """The docs lm-eval will number in a rows file: every row, or for a task that keeps only some (PubMedQA's
    test fold: `keep_ids` names the id field and the list its task's hook reads), the rows it keeps."""
    rows = [line for line in data.read_text().splitlines() if line.strip()]
    keep = bench.get("keep_ids")
    if not keep:
        return len(rows)
    listed = (evals_dir() / keep["file"]).read_text().splitlines()
    ids = {line.strip() for line in listed if line.strip() and not line.startswith("#")}
    return sum(1 for line in rows if str(json.loads(line).get(keep["field"])) in ids)


def staged_hf_env(data_dir: Path | None) -> dict[str, str]:
    """A --data-dir staged by `ftstudy stage-data` holds a Hugging Face cache (hf_home/) with the datasets of
    lm-eval's built-in tasks: read it, offline.

    Example:
        >>> staged_hf_env(None)
        {}
    """
    home = Path(data_dir) / "hf_home" if data_dir else None
    if home is None or not home.is_dir():
        return {}
    return {"HF_HOME": str(home.resolve()), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass
class Planned:
    """One benchmark's lm-eval run before it starts: its work folder, spec, seeded subset and environment."""

    work: Path
    spec: dict[str, Any]
    subset: list[int] | None
    env: dict[str, str]


def plan(ctx: BenchContext, bench: dict) -> Planned:
    """Everything about a run that is decided before it starts (writes only the task overlay)."""
    work = ctx.work_dir(bench["id"])
    include, n_docs = local_overlay(bench, ctx.data_dir, work)
    grouped = bench.get("subtasks") or bench.get("builtin_subtasks")  # lm-eval numbers a group's docs per subtask
    n_docs = n_docs or (None if grouped else bench["protocol"]["n_items"])
    subset = None
    if ctx.limit and n_docs:
        subset = [int(i) for i in pick_subset([str(i) for i in range(n_docs)], ctx.limit, ctx.seed)]
    elif ctx.limit:
        raise HarnessUnavailable(f"{bench['id']}: --limit needs the task's size (protocol n_items of a single task "
                                 "in evals/benchmarks.yaml, or --data-dir) to draw the same seeded subset for every model")
    run_spec = spec(ctx, bench, work / "out", include, {bench["task"]: subset} if subset else None)
    if not ctx.dry_run:  # float32 on CPU and bfloat16 under vLLM answer differently: never share a cache
        engine = f"{run_spec['model']}:{run_spec['model_args']}"
        run_spec["use_cache"] = str(cache_path(work, records.fingerprint_of(ctx.model, ctx.adapter), bench, engine))
    env = {"HF_ALLOW_CODE_EVAL": "1"} if bench.get("code_execution") and ctx.allow_code_execution else {}
    env.update({"TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_TRUST_REMOTE_CODE": "0"})
    env.update(staged_hf_env(ctx.data_dir))
    return Planned(work, run_spec, subset, env)


def write_spec(planned: Planned) -> Path:
    """Clear the earlier run's output (never read an interrupted run's files) and write the spec; returns its path."""
    shutil.rmtree(planned.work / "out", ignore_errors=True)
    planned.work.mkdir(parents=True, exist_ok=True)
    if planned.spec["use_cache"]:
        Path(planned.spec["use_cache"]).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(planned.work / "spec.json", json.dumps(planned.spec, indent=2))
    return planned.work / "spec.json"


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    planned = plan(ctx, bench)
    python = "<eval-env>/bin/python" if ctx.dry_run else envs.bin_path("eval")
    argv = lm_eval_argv(python, planned.work / "spec.json")
    ctx.commands.append(argv)
    if ctx.dry_run:
        return HarnessOutput({}, [], settings={"command": runner.show(argv), "spec": planned.spec})
    write_spec(planned)
    log = planned.work / "lm_eval.log"
    started = time.time()
    runner.check(runner.run(argv, env=planned.env, log=log, quiet=True), f"lm-eval {bench['task']}", log)
    return finish(planned, bench, log, time.time() - started)


def finish(planned: Planned, bench: dict, log: Path, wall: float) -> HarnessOutput:
    """The run's HarnessOutput: lm-eval's files parsed, with the settings used and the request cache's counts."""
    out = parse_output(planned.work / "out", bench, planned.subset, wall)
    out.settings["lm_eval"] = {k: planned.spec[k] for k in ("model", "num_fewshot", "batch_size", "apply_chat_template",
                                                             "fewshot_as_multiturn", "gen_kwargs", "seed")}
    out.settings["request_cache"] = cache_hits(log)
    return out


def cache_hits(log: Path) -> dict[str, int] | None:
    """How many requests lm-eval answered from its request cache and how many it computed in the log's last run
    (after the runner's last `$ command` line; its own lines "Cached requests: N, Requests remaining: M", one per
    request type), summed; None without a cache."""
    import re

    text = log.read_text(errors="replace") if log.is_file() else ""
    last = text[text.rfind("\n$ ") + 1:] if "\n$ " in text else text
    found = [tuple(map(int, m)) for m in re.findall(r"Cached requests: (\d+), Requests remaining: (\d+)", last)]
    if not found:
        return None
    return {"cached": sum(c for c, _ in found), "computed": sum(r for _, r in found)}


def parse_output(out: Path, bench: dict, subset: list[int] | None, wall: float) -> HarnessOutput:
    """Read lm-eval's results_*.json and samples_<task>_*.jsonl (newest of each) into a HarnessOutput."""
    results = sorted(out.rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not results:
        raise HarnessUnavailable(f"lm-eval wrote no results under {out}")
    res = json.loads(results[-1].read_text())
    task = bench["task"]
    metrics = {k: v for k, v in res["results"].get(task, {}).items() if isinstance(v, (int, float))}
    per_item_key, _, metric_filter = bench["metric"].partition(",")
    # a group (MMLU, LegalBench) logs one file per subtask, whose doc ids restart at 0: its items are "subtask/id"
    tasks = list(res.get("configs") or [task])
    grouped = tasks != [task]
    samples = []
    for name in tasks:
        files = sorted(out.rglob(f"samples_{name}_[0-9]*.jsonl"), key=lambda p: p.stat().st_mtime)
        for line in files[-1].read_text().splitlines() if files else []:
            s = json.loads(line)
            if metric_filter and s.get("filter", metric_filter) != metric_filter:
                continue  # one record per filter (gsm8k's strict-match and flexible-extract): the metric's own
            rec = {"id": f"{name}/{s['doc_id']}" if grouped else str(s["doc_id"]), "score": _num(s.get(per_item_key)),
                   "output": _output(s), "target": s.get("target")}
            if bench.get("predict_only"):
                rec["doc"] = s.get("doc")  # a scorer outside lm-eval (the code sandbox) needs the item itself
            samples.append(rec)
    samples.sort(key=lambda r: (r["id"].rpartition("/")[0], int(r["id"].rpartition("/")[2])))
    settings = {"n-shot": res.get("n-shot", {}).get(task), "chat_template_sha": res.get("chat_template_sha"),
                "fewshot_as_multiturn": res.get("fewshot_as_multiturn"), "task_hash": res.get("task_hashes", {}).get(task),
                "config": {k: res.get("config", {}).get(k) for k in ("model", "model_args", "batch_size", "device")},
                "wall_s": round(wall, 2)}
    return HarnessOutput(metrics=metrics, samples=samples, harness_version=res.get("lm_eval_version"),
                         settings={**settings, "task_version": res.get("versions", {}).get(task)},
                         subset_ids=[str(i) for i in subset] if subset else [r["id"] for r in samples])


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _output(sample: dict) -> str:
    """What the model produced: generated text, or for multiple choice the index of the choice it ranked first."""
    resp = sample.get("filtered_resps")
    # multiple choice: one [loglikelihood, is_greedy] pair per choice (lm-eval writes the numbers as strings)
    if isinstance(resp, list) and resp and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in resp):
        lls = [_num(r[0]) for r in resp]
        if all(v is not None for v in lls):
            return str(max(range(len(lls)), key=lls.__getitem__))
    if isinstance(resp, list) and resp:
        return str(resp[0])
    return str(resp)


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """Before any generation: the eval environment that holds lm-eval (a missing one is one line naming the fix)."""
    try:
        envs.bin_path("eval")
    except envs.EnvMissing as exc:
        return [str(exc).splitlines()[0] + " (install: ftstudy setup eval)"]
    return []
