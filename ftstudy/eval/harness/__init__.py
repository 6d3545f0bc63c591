"""Harness dispatch: each benchmark declares its harness in evals/benchmarks.yaml; the harness runs it.

A harness is a function `run(ctx: BenchContext, bench: dict) -> HarnessOutput`, registered in HARNESSES by
name (module:function, imported lazily). Adding a benchmark is adding data, plus at most one harness. Beside its
`run`, a harness module may define `preflight(ctx, bench) -> list[str]` (what is missing, one line each, checked
before anything generates; `preflight` below dispatches to it) and `harness_version() -> str` (the version its
results will record, known beforehand, so records.find_reusable can match it).

Every harness returns the primary metric and its per-item records: `samples` rows carry `id` (the item),
`score` (the item's value of the benchmark's metric) and `output` (what the model produced or chose), so two
results on the same items can be compared item by item (ftstudy.eval.stats.paired_bootstrap).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ftstudy.core.errors import UserError
from ftstudy.data.benchmark_items import HarnessUnavailable  # raised by the data stage too: defined there
from ftstudy.data.selection import smallest

HARNESSES: dict[str, str] = {
    "lm-eval": "ftstudy.eval.harness.lmeval:run",
    "bigcode": "ftstudy.eval.harness.code:run",
    "rouge": "ftstudy.eval.harness.generative:run_rouge",
    "toolcall": "ftstudy.eval.harness.generative:run_toolcall",
    "chat-probe": "ftstudy.eval.harness.generative:run_chat_probe",
    "embedding": "ftstudy.eval.harness.generative:run_relevance",
    "judge-single": "ftstudy.eval.harness.judging:run_single",
    "judge-pairwise": "ftstudy.eval.harness.judging:run_pairwise",
    "judge-criteria": "ftstudy.eval.harness.criteria:run",
    "judge-toxicity": "ftstudy.eval.harness.toxicity:run",
    "mt-bench": "ftstudy.eval.harness.mtbench:run",
    "alpaca-eval": "ftstudy.eval.harness.alpacaeval:run",
    "bfcl": "ftstudy.eval.harness.bfcl:run",
}


@dataclass
class BenchContext:
    """Everything a harness needs to know about the model and the run."""

    experiment: str
    model: str                      # hub id or local folder (base or merged)
    adapter: str | None = None      # LoRA adapter folder, evaluated on top of `model`
    tag: str = "base"
    limit: int | None = None        # seeded subset size, the same items for every model of a study
    seed: int = 1234
    data_dir: Path | None = None    # local files instead of the hub (tests, offline users)
    out_dir: Path = Path("results")
    device: str = "cpu"             # "cuda" on GPU hosts: lm-eval vllm backend, vLLM serving
    engine: str | None = None       # the serving engine asked for (bench --engine); None: by device
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"   # the variable holding the judge's key (its name; never the key)
    judge_concurrency: int = 4                  # judge requests in flight at once
    judge_temperature: float = 0.0
    allow_code_execution: bool = False
    dry_run: bool = False
    server_url: Callable[[], str] | None = None   # starts (once) and returns an OpenAI-compatible base URL
    base_outputs: dict[str, str] | None = None    # the base model's outputs, for pairwise judging
    commands: list[list[str]] = field(default_factory=list)  # every external command run (recorded; --dry-run)
    cache: dict = field(default_factory=dict)    # generations shared by benchmarks of one bench call

    def work_dir(self, name: str) -> Path:
        """A harness's scratch folder for one benchmark: per experiment and tag, so bench jobs of two experiments
        that share a benchmark (side by side, or as Slurm jobs) never write the same files."""
        return work_root(self.out_dir, self.experiment) / f"{self.tag}-{name}"


def work_root(results: Path, experiment: str) -> Path:
    """Where the harnesses of one experiment keep their scratch folders, under the results folder."""
    return results / ".work" / experiment


@dataclass
class HarnessOutput:
    metrics: dict[str, float]                 # metric name -> value (the declared metric among them)
    samples: list[dict[str, Any]]             # per-item records: id, score, output (+ anything useful)
    harness_version: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)   # decoding, template, shots actually used
    subset_ids: list[str] | None = None


def get(harness: str) -> Callable[[BenchContext, dict], HarnessOutput]:
    module, func = HARNESSES[harness].split(":")
    return getattr(importlib.import_module(module), func)


class PreflightFailed(UserError):
    """A benchmark cannot be scored as asked; found before anything generated. One line per problem."""


def expected_version(bench: dict) -> str | None:
    """The version a harness will record, when its module can tell beforehand (`harness_version()`), else None."""
    known = getattr(module_of(bench), "harness_version", None)
    return known() if known else None


def module_of(bench: dict) -> Any:
    """The module that holds a benchmark's harness (its `run`, and its `preflight` when it has one)."""
    return importlib.import_module(HARNESSES[bench["harness"]].split(":")[0])


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """What a benchmark's scoring will need and is missing, checked before anything generates: the harness
    module's `preflight(ctx, bench) -> list[str]` (one line per problem, saying what is missing and how to fix
    it; empty when ready). A harness without one has nothing to check; a check that raises a UserError (or
    HarnessUnavailable) counts as its one problem.

    Example:
        >>> preflight(BenchContext("x", "m"), {"id": "ag_news", "harness": "toolcall"})  # doctest: +SKIP
        []
    """
    check = getattr(module_of(bench), "preflight", None)
    if check is None or ctx.dry_run:
        return []
    try:
        return [str(p) for p in check(ctx, bench)]
    except UserError as exc:
        return [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]


def pick_subset(ids: list[str], limit: int | None, seed: int) -> list[str]:
    """A seeded subset of item ids that is the same for every model (and any input order), not the first N.

    Example:
        >>> pick_subset(["a", "b", "c", "d"], 2, seed=1) == pick_subset(["d", "c", "b", "a"], 2, seed=1)
        True
    """
    ids = [str(i) for i in ids]
    if limit and limit < len(ids):
        ids = smallest(ids, limit, f"{seed}:")
    return sorted(ids, key=lambda i: (len(i), i))


def capped(rows: list[dict], bench: dict) -> list[dict]:
    """At most the benchmark's `max_items` rows: a seeded subset (seed 0, the same items for every model)."""
    if bench.get("max_items") and len(rows) > int(bench["max_items"]):
        keep = set(pick_subset([r["id"] for r in rows], int(bench["max_items"]), seed=0))
        rows = [r for r in rows if r["id"] in keep]
    return rows
