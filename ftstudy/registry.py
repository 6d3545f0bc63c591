"""The experiment and benchmark registries: plain data read from `experiments.yaml` and `evals/benchmarks.yaml`.

Every verb looks experiments up here, by id; an unknown id answers with the closest ids.

Example:
    >>> from ftstudy import registry
    >>> registry.experiment("code").methods
    ['lora', 'full']
"""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftstudy.errors import UserError
from ftstudy.resources import evals_dir

METHODS = ("lora", "qlora", "full", "dpo")


class UnknownName(UserError, LookupError):
    """An id that is not in a registry; the message carries the near matches and the full list."""

    def __init__(self, kind: str, name: str, known: list[str]):
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")
        self.near = near


@dataclass(frozen=True)
class Source:
    """One training source: where it lives on the hub, its row shape, and how it joins the mixture."""

    hub: str
    shape: str
    split: str = "train"
    config: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    to_axolotl: str = ""
    weight: float = 1.0
    cap: int | None = None
    alternative: bool = False


@dataclass(frozen=True)
class Experiment:
    """One experiment of the study (one row of the architecture's table)."""

    id: str
    title: str
    teaches: str
    sources: list[Source]
    methods: list[str]
    sequence_len: int
    hyperparameters: dict[str, Any]
    benchmarks: dict[str, Any]
    plan: dict[str, Any]
    seed: int = 42

    @property
    def active_sources(self) -> list[Source]:
        """Sources in the default mixture (alternatives have weight 0 and are used only when named)."""
        return [s for s in self.sources if not s.alternative and s.weight > 0]

    @property
    def primary(self) -> list[str]:
        return list(self.benchmarks.get("primary", []))

    @property
    def all_benchmarks(self) -> list[str]:
        """Primary, secondary and guard benchmark ids, in that order, without repeats."""
        ids = self.primary + list(self.benchmarks.get("secondary", []))
        ids += [g["id"] for g in self.benchmarks.get("guards", [])]
        return list(dict.fromkeys(ids))

    def hyper(self, method: str) -> dict[str, Any]:
        """This experiment's hyperparameters for one method: shared values overlaid by the method's own."""
        shared = {k: v for k, v in self.hyperparameters.items() if k not in METHODS}
        return {**shared, **self.hyperparameters.get(method, {})}


def _data_path() -> Path:
    return Path(__file__).with_name("experiments.yaml")


@functools.cache
def _load() -> tuple[dict[str, Experiment], dict[str, dict]]:
    raw = yaml.safe_load(_data_path().read_text())
    seed = raw.get("seed", 42)
    exps = {}
    for e in raw["experiments"]:
        sources = [Source(**s) for s in e.pop("sources")]
        exps[e["id"]] = Experiment(sources=sources, seed=seed, **e)
    raw_bench = yaml.safe_load((evals_dir() / "benchmarks.yaml").read_text())
    _NOT_RUN.clear()
    _NOT_RUN.update(raw_bench.get("not_run") or {})
    return exps, raw_bench["benchmarks"]


_NOT_RUN: dict[str, dict] = {}


def not_run(exp_id: str | None = None) -> dict[str, dict]:
    """Benchmarks the study plan names that ftstudy does not run, with the reason (evals/benchmarks.yaml)."""
    _load()
    return {k: v for k, v in _NOT_RUN.items() if exp_id is None or v.get("experiment") == exp_id}


def experiments() -> list[Experiment]:
    """All experiments, in the study's order."""
    return list(_load()[0].values())


def experiment_ids() -> list[str]:
    return list(_load()[0])


def experiment(exp_id: str) -> Experiment:
    """Look one experiment up by id; raises UnknownName with near matches."""
    exps = _load()[0]
    if exp_id not in exps:
        raise UnknownName("experiment", exp_id, list(exps))
    return exps[exp_id]


def benchmarks() -> dict[str, dict]:
    """Benchmark declarations by id (evals/benchmarks.yaml)."""
    return dict(_load()[1])


def benchmark(bench_id: str) -> dict:
    b = _load()[1]
    if bench_id not in b:
        raise UnknownName("benchmark", bench_id, list(b))
    return {"id": bench_id, **b[bench_id]}


def check_method(exp: Experiment, method: str) -> None:
    """Refuse a method the experiment does not declare."""
    if method not in exp.methods:
        raise UnknownName(f"method for experiment {exp.id!r}", method, exp.methods)
