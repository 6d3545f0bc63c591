"""Benchmark items for the decontamination check, each loaded the way the benchmark's own harness loads it.

    lm-eval      the dataset the task YAML names (dataset_path, dataset_name, test_split else validation_split):
                 ftstudy's own YAML under evals/tasks/, else the YAML of the lm-eval installed in the eval
                 environment (groups and tags expanded to their tasks), else lm-eval 0.4.13's values (PINNED)
    bigcode      humaneval / mbpp: the hub dataset named by their item task (evals/tasks/*_local.yaml); MultiPL-E: not checked
    rouge, toolcall   the generative harness's hub table (held-out xLAM: the held-out rows only)
    judge-*, chat-probe, embedding   the question file under evals/ (it ships with ftstudy)
    bfcl         the data files bundled in the bfcl environment's bfcl-eval wheel

Where the rows come from, first found wins: with `data_dir`, `<data_dir>/<task>.jsonl` (the file `bench
--data-dir` reads) or the staged copy `<data_dir>/<dataset_path>/<dataset_name>/<split>.jsonl`; else the hub
through the eval environment's `datasets` (skipped when offline and the dataset is not in the hub cache).
Items that cannot be loaded make the benchmark "not checked", with the reason: never "clean".

Example:
    >>> it = load("chat_retention")
    >>> it.checked, it.where.endswith("retention_probes.jsonl"), len(it.rows) > 0
    (True, True, True)
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ftstudy.config import registry
from ftstudy.core.bundled import evals_dir
from ftstudy.data.benchmark_items import (ITEM_TASKS, HUB, HarnessUnavailable, Source, evals_items, heldout_rows,
                                          hub_argv, load_jsonl)

# lm-eval 0.4.13's datasets for the built-in tasks of evals/benchmarks.yaml, used when no eval environment is
# installed (tests/test_decontam.py checks them against the installed lm-eval's YAMLs).
PINNED = {
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "truthfulqa_mc1": ("truthfulqa/truthful_qa", "multiple_choice", "validation"),
    "truthfulqa_mc2": ("truthfulqa/truthful_qa", "multiple_choice", "validation"),
    "ifeval": ("google/IFEval", None, "train"),
    "coqa": ("EleutherAI/coqa", None, "validation"),
    "medqa_4options": ("GBaker/MedQA-USMLE-4-options-hf", None, "test"),
    "medmcqa": ("openlifescienceai/medmcqa", None, "validation"),
    "toxigen": ("skg/toxigen-data", "annotated", "test"),
    "xstorycloze_en": ("juletxara/xstory_cloze", "en", "eval"),
}
MMLU_SUBJECT = re.compile(r"^mmlu_([a-z_]+)$")
# Keys of an item that are not the item's own text: the xLAM tool catalogue is shared by design between
# training and held-out rows, so only the query and the answers are the item.
SKIP = {"Salesforce/xlam-function-calling-60k": ("tools", "id"), "xlam_heldout": ("tools", "id")}
MAX_DEPTH = 4  # group -> subgroup -> tag -> task


@dataclass
class Items:
    """One benchmark's items, or why they could not be loaded."""

    bench: str
    rows: list[dict] | None = None
    where: str = ""
    reason: str = ""
    skip: tuple[str, ...] = ()
    parts: list[str] = field(default_factory=list)   # the datasets read, for the record

    @property
    def checked(self) -> bool:
        return self.rows is not None


class NotLoaded(Exception):
    """Items that cannot be loaded here; the message says why and how to stage them."""


def load(bench_id: str, data_dir: str | Path | None = None) -> Items:
    """The items of one benchmark (see the module docstring); never raises for missing data."""
    bench = registry.benchmark(bench_id)
    loader = LOADERS.get(bench["harness"])
    try:
        if loader is None:
            raise NotLoaded(f"no item loader for harness {bench['harness']!r}")
        return loader(bench, Path(data_dir) if data_dir else None)
    except NotLoaded as exc:
        return Items(bench_id, reason=str(exc))
    except Exception as exc:  # a broken staged file or a tool failure: the benchmark is not checked, and says why
        return Items(bench_id, reason=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


# ---- reading rows -------------------------------------------------------------------------------------------

def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _cached(hub: str) -> bool:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
    ds_cache = Path(os.environ.get("HF_DATASETS_CACHE", home / "datasets"))
    return (hub_cache / f"datasets--{hub.replace('/', '--')}").is_dir() or (ds_cache / hub.replace("/", "___")).is_dir()


def hub_rows(hub: str, config: str | None, split: str) -> list[dict]:
    """One split from the hub through the eval environment's `datasets` (as the generative harness loads it)."""
    if _offline() and not _cached(hub):
        raise NotLoaded(f"{hub} ({config or 'default'}/{split}) is not staged and the hub is offline "
                        "(HF_HUB_OFFLINE); stage it with --data-dir")
    from ftstudy.core import tool_envs as envs
    from ftstudy.core import runner

    try:
        python = envs.bin_path("eval")
    except envs.EnvMissing:
        raise NotLoaded(f"{hub}: not staged, and the eval environment that reads the hub is missing "
                        "(`ftstudy setup eval`)") from None
    with tempfile.TemporaryDirectory(prefix="ftstudy-items-") as tmp:
        out = Path(tmp) / "rows.jsonl"
        res = runner.run(hub_argv(python, Source(hub, config, split), out), quiet=True)
        if res.returncode != 0:
            last = next((ln for ln in reversed(res.tail) if ln.strip()), "no output")
            raise NotLoaded(f"loading {hub} ({config or 'default'}/{split}) from the hub failed: {last.strip()[:200]}")
        return load_jsonl(out)


def _rows(task: str, hub: str | None, config: str | None, split: str, data_dir: Path | None) -> tuple[list[dict], str]:
    """Rows of one dataset split: the staged copy under data_dir first, then the hub."""
    if data_dir is not None:
        names = [data_dir / f"{task}.jsonl"]
        if hub:
            names += [data_dir / hub / (config or "default") / f"{split}.jsonl", data_dir / hub / f"{split}.jsonl"]
        for p in names:
            if p.is_file():
                return load_jsonl(p), str(p)
    if not hub or hub in ("json", "csv", "parquet", "arrow", "text"):
        where = f" under {data_dir}" if data_dir else " (pass --data-dir)"
        raise NotLoaded(f"{task}: its rows are a local file; stage them as {task}.jsonl{where}")
    return hub_rows(hub, config, split), f"hub:{hub}" + (f"/{config}" if config else "") + f":{split}"


# ---- lm-eval task YAMLs -------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """Reads lm-eval task YAMLs, whose `!function` tags name Python hooks that are not needed here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def task_yaml(path: Path) -> dict:
    """An lm-eval task YAML with its `include` merged in and its `!function` hooks read as None."""
    data = yaml.load(path.read_text(), Loader=_Loader) or {}
    if isinstance(data.get("include"), str):
        data = {**task_yaml(path.parent / data["include"]), **{k: v for k, v in data.items() if k != "include"}}
    return data


def installed_tasks_dir() -> Path | None:
    """lm_eval/tasks of the eval environment, when it is installed."""
    from ftstudy.core import tool_envs as envs

    root = envs.location("eval")
    found = sorted(root.glob("lib/python3*/site-packages/lm_eval/tasks"))
    return found[0] if found else None


_NAME_LINE = re.compile(r"""^\s*-?\s*["']?(?:task|group|tag)["']?\s*:\s*["']?([\w.-]+)["']?\s*$|^\s*-\s*["']?([\w.-]+)["']?\s*$""",
                        re.M)


@functools.cache
def _names_index(tasks_dir: Path) -> dict[str, list[Path]]:
    """Task, group and tag names -> the YAML files that mention them as such (read once per process)."""
    out: dict[str, list[Path]] = {}
    for p in sorted(tasks_dir.rglob("*.yaml")):
        for m in _NAME_LINE.finditer(p.read_text(errors="replace")):
            out.setdefault(m.group(1) or m.group(2), []).append(p)
    return out


def _files_naming(tasks_dir: Path, name: str) -> list[Path]:
    return list(dict.fromkeys(_names_index(tasks_dir).get(name, [])))


def task_datasets(task: str, tasks_dir: Path | None, depth: int = 0) -> list[tuple[str, str | None, str]]:
    """(dataset_path, dataset_name, split) of every task a task name, group or tag stands for."""
    if depth > MAX_DEPTH:
        raise NotLoaded(f"lm-eval task {task!r}: groups nested too deeply")
    if tasks_dir is None:
        if task in PINNED:
            return [PINNED[task]]
        m = MMLU_SUBJECT.match(task)
        if m and task != "mmlu_math":
            return [("cais/mmlu", m.group(1), "test")]
        raise NotLoaded(f"lm-eval task {task!r}: the eval environment is not installed to read its YAML "
                        f"(`ftstudy setup eval`), or stage its items as {task}.jsonl under --data-dir")
    out: list[tuple[str, str | None, str]] = []
    for path in _files_naming(tasks_dir, task):
        data = task_yaml(path)
        tags = data.get("tag") or []
        tags = [tags] if isinstance(tags, str) else tags
        if data.get("task") == task and data.get("dataset_path"):
            split = data.get("test_split") or data.get("validation_split")
            return [(data["dataset_path"], data.get("dataset_name"), split)]
        if data.get("group") == task or task in tags:
            subs = data.get("task") if data.get("group") == task else [data.get("task")]
            for sub in subs if isinstance(subs, list) else [subs]:
                name = sub.get("task") if isinstance(sub, dict) else sub
                if isinstance(name, str) and name != task:
                    out += task_datasets(name, tasks_dir, depth + 1)
    if not out:
        raise NotLoaded(f"lm-eval task {task!r}: no task YAML with a dataset found under {tasks_dir}")
    return list(dict.fromkeys(out))


def _lmeval(bench: dict, data_dir: Path | None) -> Items:
    task = bench["task"]
    if data_dir is not None and (data_dir / f"{task}.jsonl").is_file():  # bench --data-dir's own file
        rows, where = _rows(task, None, None, "test", data_dir)
        return Items(bench["id"], rows, where, parts=[where])
    local = evals_dir() / "tasks" / f"{task}.yaml"
    if bench.get("local_task") and local.is_file():
        data = task_yaml(local)
        if isinstance(data.get("task"), list):    # a group of lm-eval's own tasks (mmlu_math)
            specs = [s for t in data["task"] for s in task_datasets(t, installed_tasks_dir())]
        else:
            specs = [(data.get("dataset_path"), data.get("dataset_name"),
                      data.get("test_split") or data.get("validation_split"))]
    else:
        specs = task_datasets(task, installed_tasks_dir())
    rows, parts = [], []
    for hub, config, split in specs:
        got, where = _rows(task, hub, config, split, data_dir)
        rows += got
        parts.append(where)
    return Items(bench["id"], rows, parts[0] if len(parts) == 1 else f"{len(parts)} datasets", parts=parts)


# ---- the other harnesses ------------------------------------------------------------------------------------

def _code(bench: dict, data_dir: Path | None) -> Items:
    if bench["id"] not in ITEM_TASKS:
        raise NotLoaded(f"{bench['id']}: its items are read inside bigcode-evaluation-harness; not loadable here")
    return _lmeval({**bench, "task": ITEM_TASKS[bench["id"]], "local_task": True}, data_dir)


def _generative(bench: dict, data_dir: Path | None) -> Items:
    task = bench["task"]
    hub, config, split = HUB.get(task, (None, None, "test"))
    rows, where = _rows(task, hub, config, split, data_dir)
    if task == "xlam_heldout" and not where.endswith(f"{task}.jsonl"):  # the whole train split: keep the held-out rows
        rows = heldout_rows(rows)
    return Items(bench["id"], rows, where, skip=SKIP.get(task, ()), parts=[where])


def _questions(bench: dict, data_dir: Path | None) -> Items:
    try:
        rows = evals_items(bench)
    except HarnessUnavailable as exc:
        raise NotLoaded(str(exc)) from None
    where = str(evals_dir() / bench["questions"])
    return Items(bench["id"], [{k: v for k, v in r.items() if k != "id"} for r in rows], where, parts=[where])


def _bfcl(bench: dict, data_dir: Path | None) -> Items:
    from ftstudy.core import tool_envs as envs

    data = sorted(envs.location("bfcl").glob("lib/python3*/site-packages/bfcl_eval/data"))
    if not data:
        raise NotLoaded("BFCL's items ship inside the bfcl environment (`ftstudy setup bfcl`), which is not installed")
    rows, parts = [], []
    for cat in bench["task"].split(","):
        for path in sorted(data[0].glob(f"BFCL_v*_{cat}.json")):
            rows += [{k: v for k, v in r.items() if k not in ("id", "function")} for r in load_jsonl(path)]
            parts.append(str(path))
    if not parts:
        raise NotLoaded(f"no BFCL data files for {bench['task']} under {data[0]}")
    return Items(bench["id"], rows, f"{len(parts)} bfcl-eval files", parts=parts)


LOADERS = {"lm-eval": _lmeval, "bigcode": _code, "rouge": _generative, "toolcall": _generative,
           "chat-probe": _questions, "embedding": _questions, "judge-single": _questions,
           "judge-pairwise": _questions, "bfcl": _bfcl}
