"""The experiment and benchmark registries: plain data read from `experiments.yaml` and `evals/benchmarks.yaml`.

Every verb looks experiments up here, by id; an unknown id answers with the closest ids. $FTSTUDY_REGISTRY_DIR
names a folder holding a copy of both (experiments.yaml and evals/) to read instead of the bundled ones.

Example:
    >>> from ftstudy.config import registry
    >>> registry.experiment("code").methods
    ['lora', 'full']
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftstudy.config import protocol
from ftstudy.config.row_formats import SHAPES
from ftstudy.core import untrusted_yaml as safeload
from ftstudy.core.errors import UserError
from ftstudy.core.names import safe_name, under
from ftstudy.core.bundled import evals_dir, registry_dir

METHODS = ("lora", "qlora", "full", "dpo")
ACCESS = ("gated", "licence", "very large", "not on the hub")  # Source.access values


class RegistryError(UserError, ValueError):
    """experiments.yaml is inconsistent; the message names the experiment and sources."""


class UnknownName(UserError, LookupError):
    """An id that is not in a registry; the message carries the near matches and the full list."""

    def __init__(self, kind: str, name: str, known: list[str]):
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")
        self.near = near


@dataclass(frozen=True)
class Source:
    """One training source: its id (unique in its experiment; it names the prepared file, so two sources of
    one row shape never share a file), where it lives on the hub, its row shape, and how it joins the mixture."""

    id: str
    hub: str
    shape: str
    split: str = "train"
    config: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    to_axolotl: str = ""
    weight: float = 1.0
    cap: int | None = None
    alternative: bool = False
    # How the hub copy is read, beyond config/split: several configs read in turn into one file (their name
    # goes into each row as `_config`), a folder of the repo (starcoderdata's per-language data_dir), or one
    # file of it (repos that hold more than the training file).
    configs: list[str] = field(default_factory=list)
    data_dir: str | None = None
    data_files: str | None = None
    revision: str | None = None
    # Why a user may not get this source as is (any of ACCESS): "gated" (accept the terms on the hub page, set
    # HF_TOKEN), "licence" (terms to read before use), "very large" (the hub dump stops after `cap` rows in hub
    # order; or --data with a local slice), "not on the hub" (a local file is needed: --data). `note` says
    # what and what to do; `show` prints both, and prepare's errors repeat them.
    access: list[str] = field(default_factory=list)
    note: str = ""
    # The planner's estimates until `prepare` measures them: rows of the hub split, mean tokens per training row.
    split_rows: int | None = None
    mean_tokens: int | None = None


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

    def select(self, ids: list[str] | tuple[str, ...] = ()) -> list[Source]:
        """The sources of one run: the default mixture, or the ones named (`--source ID`), in the order given.

        A named alternative has weight 0 in the default mixture; chosen by name it joins with weight 1.

        Example:
            >>> [s.hub for s in experiment("instruction").select(["openorca"])]
            ['Open-Orca/OpenOrca']
        """
        if not ids:
            return self.active_sources
        by_id = {s.id: s for s in self.sources}
        out = []
        for i in dict.fromkeys(ids):
            if i not in by_id:
                raise UnknownName(f"source of experiment {self.id!r}", i, list(by_id))
            s = by_id[i]
            out.append(replace(s, weight=s.weight or 1.0, alternative=False))
        return out

    def hyper(self, method: str) -> dict[str, Any]:
        """This experiment's hyperparameters for one method: shared values overlaid by the method's own."""
        shared = {k: v for k, v in self.hyperparameters.items() if k not in METHODS}
        return {**shared, **self.hyperparameters.get(method, {})}


def _data_path() -> Path:
    return registry_dir() / "experiments.yaml"


def _load() -> tuple[dict[str, Experiment], dict[str, dict], dict[str, dict]]:
    return _read(str(_data_path()), str(evals_dir() / "benchmarks.yaml"))


def _entry(cls, raw: dict, where: str) -> dict:
    """`raw` when its keys are `cls`'s fields (an experiment's own `seed` aside) and none it needs is missing;
    otherwise a RegistryError naming the file, the entry and the key, with the nearest field name."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key == "seed":
            raise RegistryError(f"{where}: the seed is the study's: set `seed:` once at the top of experiments.yaml")
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            raise RegistryError(f"{where}: unknown key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    missing = [n for n, f in fields.items() if n not in raw and n != "seed"
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise RegistryError(f"{where}: missing {', '.join(map(repr, missing))} (the other entries show its form)")
    return raw


def _yaml(path: str) -> Any:
    """A registry file through the safe reader (size, depth and alias limits: one line naming the file)."""
    return safeload.load(safeload.read_text(path, max_bytes=4 * 2**20), name=path)


@functools.cache  # by path: a test that points FTSTUDY_REGISTRY_DIR at a copy reads the copy
def _read(exps_path: str, bench_path: str) -> tuple[dict[str, Experiment], dict[str, dict], dict[str, dict]]:
    raw = _yaml(exps_path)
    seed = raw.get("seed", 42)
    exps = {}
    for e in raw["experiments"]:
        where = f"{exps_path}: experiment {e.get('id')!r}"
        safe_name(e.get("id"), "experiment id", exps_path)  # ids name folders: data/prepared/<id>/, runs/<id>/...
        for s in e.get("sources") or []:
            safe_name(s.get("id") if isinstance(s, dict) else s, "source id", where)
        for m in e.get("methods") or []:
            safe_name(m, "method", where)
        sources = [Source(**_entry(Source, s, f"{where}, source {s.get('id')!r}"))
                   for s in _entry(Experiment, e, where)["sources"]]
        e = {k: v for k, v in e.items() if k != "sources"}
        ids = [s.id for s in sources]
        if len(set(ids)) != len(ids):  # a shared id would make two sources write one prepared file
            raise RegistryError(f"{where} has duplicate source ids: {ids}")
        bad = [s.id for s in sources if not set(s.access) <= set(ACCESS)]
        if bad:
            raise RegistryError(f"{where}: sources {bad} have an access not in {ACCESS}")
        bad = [f"{s.id} ({s.shape})" for s in sources if s.shape not in SHAPES]
        if bad:
            raise RegistryError(f"{where}: sources {bad} have a row shape that "
                             f"config/row_formats.yaml does not define")
        exps[e["id"]] = Experiment(sources=sources, seed=seed, **e)
    raw_bench = _yaml(bench_path)
    for bench_id, b in raw_bench["benchmarks"].items():  # an id names results/<exp>/<tag>/<id>.json
        safe_name(bench_id, "benchmark id", bench_path)
        where = f"{bench_path}: benchmark {bench_id}"
        for task in str(b.get("task") or "x").split(","):  # a task names <data-dir>/<task>.jsonl, evals/tasks/<task>.yaml
            safe_name(task, "task", where)
        for key in ("rubric", "questions"):  # files under evals/
            if b.get(key):
                under(Path(bench_path).parent, *Path(str(b[key])).parts, where=f"{where}, {key}")
        # every number needs its protocol: refuse an entry without one
        protocol.check(bench_id, (b or {}).get("protocol"), bench_path)
        if b.get("n_items") not in (None, b["protocol"]["n_items"]):
            raise protocol.ProtocolError(f"{bench_path}: benchmark {bench_id!r} has n_items {b['n_items']} but its "
                                         f"protocol says {b['protocol']['n_items']}: make them agree")
    return exps, raw_bench["benchmarks"], dict(raw_bench.get("not_run") or {})


ROLES = ("primary", "secondary", "guards")  # the benchmark roles of an experiment; each is a family of tests
STATISTICS = {"families": {"primary": "experiment", "secondary": "experiment", "guards": "study"},
              "adjust": "holm", "alpha": 0.05, "power": 0.8, "discordance": None}


def statistics() -> dict[str, Any]:
    """The study's `statistics:` declaration (experiments.yaml): families per role, default correction, alpha,
    power and the MDE's discordance; missing keys take STATISTICS's values, a bad one is refused in one line.

    Example:
        >>> statistics()["families"]["guards"], statistics()["adjust"]
        ('study', 'holm')
    """
    return _statistics(str(_data_path()))


@functools.cache  # by path, as _read: read once per registry
def _statistics(path: str) -> dict[str, Any]:
    raw = _yaml(path).get("statistics") or {}
    out = {**STATISTICS, **raw, "families": {**STATISTICS["families"], **(raw.get("families") or {})}}
    bad = [f"{k}: {v!r}" for k, v in out["families"].items() if k not in ROLES or v not in ("experiment", "study")]
    bad += [f"{k}: {out[k]!r}" for k in ("alpha", "power") if not isinstance(out[k], (int, float)) or not 0 < out[k] < 1]
    bad += [f"adjust: {out['adjust']!r}"] if out["adjust"] not in ("holm", "bh", "none") else []
    d = out["discordance"]
    bad += [f"discordance: {d!r}"] if d is not None and (not isinstance(d, (int, float)) or not 0 < d <= 1) else []
    bad += [f"unknown key {k!r}" for k in raw if k not in STATISTICS]
    if bad:
        raise RegistryError(f"{path}: statistics: {'; '.join(bad)} (families: {{ROLE: experiment|study}} for roles "
                            f"{', '.join(ROLES)}; adjust holm|bh|none; alpha and power in (0, 1); discordance in "
                            f"(0, 1] or null)")
    return out


def not_run(exp_id: str | None = None) -> dict[str, dict]:
    """Benchmarks the study plan names that ftstudy does not run, with the reason (evals/benchmarks.yaml)."""
    return {k: v for k, v in _load()[2].items() if exp_id is None or v.get("experiment") == exp_id}


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


def plan_order() -> list[tuple[str, str]]:
    """(experiment, method) pairs in the study plan's recommended order: phase, then step, then the registry's
    order; experiments the plan does not order come last. Methods in each experiment's own order.

    Example:
        >>> plan_order()[:4]
        [('classification', 'qlora'), ('classification', 'lora'), ('classification', 'full'), ('tool_use', 'lora')]
    """
    exps = experiments()
    pos = {e.id: i for i, e in enumerate(exps)}
    key = lambda e: (e.plan.get("phase") or 99, e.plan.get("order") or 99, pos[e.id])
    return [(e.id, m) for e in sorted(exps, key=key) for m in e.methods]


def check_method(exp: Experiment, method: str) -> None:
    """Refuse a method the experiment does not declare."""
    if method not in exp.methods:
        raise UnknownName(f"method for experiment {exp.id!r}", method, exp.methods)
