"""`ftstudy stage-data DIR`: download everything the benchmarks of a study read, on a connected machine, into one
folder that an offline GPU machine then uses with `--data-dir DIR` (bench) / `--bench-data-dir DIR` (run).

What goes where (the names the harnesses look for):

* `DIR/<item set>.jsonl|.json`: the public item sets of the served and judged benchmarks in their sources' own
  row shapes (MT-Bench: FastChat's question.jsonl, GPT-4 reference answers and judge prompts at the pinned
  commit, keyed by question_id so the references join; AlpacaEval's reference file, WritingPrompts, the
  held-out xLAM rows, CNN/DM, XSum);
* `DIR/<task>.jsonl`: the test rows of ftstudy's local lm-eval tasks (evals/tasks/*.yaml), which their
  overlays read;
* `DIR/hf_home/`: a Hugging Face cache holding the datasets of lm-eval's built-in tasks (IFEval, MMLU, GSM8K,
  MATH, MedQA, ...) and AlpacaEval's length-control files; the harnesses point HF_HOME there, offline.

The plan is pure (`plan(...)`, tested by its exact argv); `run_plan` executes it.

Example:
    $ ftstudy stage-data /data/ftstudy-bench --experiments instruction,chat
    $ ftstudy bench instruction --model ./merged --data-dir /data/ftstudy-bench --judge-url ... # offline
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ftstudy.core import tool_envs as envs
from ftstudy.config import registry
from ftstudy.core import fsio, runner
from ftstudy.data import benchmark_items as itemsets
from ftstudy.data.decontam.items import task_yaml
from ftstudy.core.bundled import evals_dir

HF_HOME = "hf_home"
# bigcode-evaluation-harness's Python tasks -> the hub id their Task passes to load_dataset
BIGCODE_DATASETS = {"humaneval": "openai_humaneval", "mbpp": "mbpp"}
LOAD_SCRIPT = "import datasets, sys; [datasets.load_dataset(n) for n in sys.argv[1:]]"
# Loads lm-eval tasks once so that `datasets` fills the HF cache named by HF_HOME (eval environment).
LMEVAL_SCRIPT = ("import sys\nfrom lm_eval.tasks import TaskManager, get_task_dict\n"
                 "tm = TaskManager()\nfor t in sys.argv[1:]:\n    get_task_dict([t], tm)\n    print('staged', t)\n")
ALPACA_LC_SCRIPT = ("from huggingface_hub import hf_hub_download\n"
                    "for f in ('df_gamed.csv', 'instruction_difficulty.csv'):\n"
                    "    print(hf_hub_download('tatsu-lab/alpaca_eval', f, repo_type='dataset'))\n")
HARNESS_ITEMS = {"mt-bench": ["mt_bench", "mt_bench_reference", "mt_bench_judge_prompts"], "alpaca-eval": ["alpaca_eval"]}


@dataclass
class Step:
    what: str                      # a line for the user
    out: str                       # the file or folder it writes, relative to DIR
    argv: list[str] | None = None  # a tool-side command, or None for a plain download
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_name: str = "eval"


def _hub_step(name: str, hub: str, config: str | None, split: str, out: str, python: str) -> Step:
    src = itemsets.Source(hub=hub, config=config, split=split)
    return Step(f"{name}: {src.where()}", out, itemsets.hub_argv(python, src, Path(out)))


def plan(experiments: list[str], python: dict[str, str] | None = None) -> list[Step]:
    """The steps that stage every benchmark of `experiments` (pure: the environments' Pythons are passed in)."""
    python = python or {"eval": "<eval-env>/bin/python", "alpaca_eval": "<alpaca_eval-env>/bin/python"}
    steps: list[Step] = []
    seen: set[str] = set()
    builtin: list[str] = []

    def add(step: Step) -> None:
        if step.out not in seen:
            seen.add(step.out)
            steps.append(step)

    for exp in experiments:
        for bid in registry.experiment(exp).all_benchmarks:
            b = registry.benchmark(bid)
            names = list(HARNESS_ITEMS.get(b["harness"], []))
            if b.get("items") in itemsets.SOURCES:
                names.append(b["items"])
            for n in names:
                src = itemsets.SOURCES[n]
                out = f"{n}.json" if (src.url or "").endswith(".json") else f"{n}.jsonl"
                add(_hub_step(n, src.hub, src.config, src.split, out, python["eval"]) if src.hub
                    else Step(f"{n}: {src.url}", out, url=src.url))
            if b["harness"] in ("toolcall", "rouge") and b["task"] in itemsets.HUB:
                add(_hub_step(b["task"], *itemsets.HUB[b["task"]], f"{b['task']}.jsonl", python["eval"]))
            if b["harness"] == "alpaca-eval":
                add(Step("AlpacaEval length-control files (tatsu-lab/alpaca_eval)", f"{HF_HOME}/alpaca_eval",
                         [python["alpaca_eval"], "-c", ALPACA_LC_SCRIPT], env={"HF_HOME": f"<DIR>/{HF_HOME}"},
                         env_name="alpaca_eval"))
            if b["harness"] == "bigcode" and b["task"] in BIGCODE_DATASETS:
                hub = BIGCODE_DATASETS[b["task"]]  # bigcode loads it by this id; offline it reads HF_HOME's cache
                add(Step(f"{b['id']}: {hub} (bigcode's dataset) into the HF cache", f"{HF_HOME}/datasets/{hub}",
                         [python.get("bigcode", "<bigcode-env>/bin/python"), "-c", LOAD_SCRIPT, hub],
                         env={"HF_HOME": f"<DIR>/{HF_HOME}"}, env_name="bigcode"))
            tasks = [b] + ([b["fallback"]] if b.get("fallback") else [])
            for t in tasks:
                if t.get("harness", b["harness"]) != "lm-eval":
                    continue
                if b.get("local_task") and t is b and not b.get("builtin_subtasks"):
                    spec = task_yaml(evals_dir() / "tasks" / f"{b['task']}.yaml")
                    if spec.get("dataset_path") not in (None, "json"):
                        add(_hub_step(b["task"], spec["dataset_path"], spec.get("dataset_name"),
                                      spec.get("test_split", "test"), f"{b['task']}.jsonl", python["eval"]))
                    continue
                group = yaml.safe_load((evals_dir() / "tasks" / f"{t['task']}.yaml").read_text()) \
                    if b.get("builtin_subtasks") else None
                for name in (group["task"] if group else [t["task"]]):
                    if name not in builtin:
                        builtin.append(name)
    if builtin:
        steps.append(Step(f"lm-eval built-in tasks into the HF cache: {', '.join(builtin)}", f"{HF_HOME}/datasets",
                          [python["eval"], "-c", LMEVAL_SCRIPT, *builtin],
                          env={"HF_HOME": f"<DIR>/{HF_HOME}", "HF_ALLOW_CODE_EVAL": "1"}))
    return steps


def run_plan(steps: list[Step], folder: Path, progress=print) -> None:
    """Execute the steps into `folder` (needs the network; each step's output replaces an older one)."""
    folder.mkdir(parents=True, exist_ok=True)
    for step in steps:
        progress(f"staging {step.what} -> {folder / step.out}")
        if step.url:  # through a temporary too: a kill mid-download leaves the older file, never half of one
            tmp = fsio.temporary_for(folder / step.out)
            try:
                itemsets.download(step.url, tmp)
                tmp.replace(folder / step.out)
            finally:
                tmp.unlink(missing_ok=True)
            continue
        argv = [str(envs.bin_path(step.env_name))] + list(step.argv or [])[1:]
        env = {k: v.replace("<DIR>", str(folder)) for k, v in step.env.items()}
        if argv[-1] != step.out:
            runner.check(runner.run(argv, env=env, quiet=True), step.what)
            continue
        # a hub export: into a temporary beside its file, which only a finished export replaces (a kill
        # in between leaves the older file, or none, never a partial or the whole xLAM split as held-out rows)
        out = folder / step.out
        tmp = fsio.temporary_for(out)
        try:
            runner.check(runner.run(argv[:-1] + [str(tmp)], env=env, quiet=True), step.what)
            if step.out == "xlam_heldout.jsonl":  # the harness reads the held-out rows only
                rows = itemsets.heldout_rows(itemsets.load_jsonl(tmp))
                fsio.atomic_write(out, "".join(json.dumps(r) + "\n" for r in rows))
            else:
                tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
