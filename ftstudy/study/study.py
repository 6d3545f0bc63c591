"""The study: one command walks an experiment through prepare → train → merge → bench base → bench ft → compare.

Each stage's output is keyed by a hash of its inputs (state/<exp>/<method>-<hardware>.json): a rerun skips what
is done and current, redoes what changed, and resumes what was interrupted (training from its last checkpoint).
Results of the base model are shared by every experiment that uses the same base and benchmark (results.py).

Example:
    $ ftstudy run classification --method lora --hardware cpu --base-model ./tiny --limit 40
    $ ftstudy status
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from ftstudy.eval import bench
from ftstudy.study import comparison
from ftstudy.config import gen
from ftstudy.train import merge
from ftstudy.config import registry
from ftstudy.train import train
from ftstudy.core import checked_json, redact
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import read_json, remove_stale_temporaries
from ftstudy.core.file_locks import RunLock
from ftstudy.core.names import under
from ftstudy.study.study_state import (SHARED, STAGES, Options, load_state, options_from_state, read_state,
                                       save_state, saved_options, state_path)

def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Study:
    """One experiment × method × hardware, its stages and their keys."""

    def __init__(self, o: Options, progress: Callable[[str], None] = print, clock: Any = None):
        self.o, self.progress = o, progress
        self.clock = clock  # an eta.Clock keyed by (experiment, method, stage): ETAs on the stage lines
        self.req = train.resolve(o.experiment, o.method, o.hardware, o.base_model, o.data, o.sets, o.max_steps, o.sources)
        self.runs, self.results = o.root / "runs", o.root / "results"
        # the names of state/<exp>/<method>-<hardware>.json, runs/ and results/: one path rule (core.names)
        under(o.root / "state", "{experiment}", "{method}-{hardware}.json", where="run", experiment=o.experiment,
              method=o.method, hardware=o.hardware)
        self.state = load_state(o)

    # ---- what each stage depends on
    def keys(self) -> dict[str, str]:
        exp = registry.experiment(self.o.experiment)
        # the benchmark items decide which rows the contamination check drops
        data_key = _hash(exp.select(self.o.sources), self.o.data, self.train_rows, exp.seed, self.o.bench_data_dir)
        train_key = _hash(train.run_id(self.req.cfg), data_key)
        bench_key = _hash(self.o.benchmarks, self.blimit, self.o.bench_data_dir,
                          [registry.benchmark(b)["version"] for b in (self.o.benchmarks or exp.all_benchmarks)])
        return {"prepare": data_key, "train": train_key, "merge": _hash(train_key, self.o.merge), "bench-base": _hash(self.o.base_model, bench_key),
                "bench-ft": _hash(train_key, bench_key), "compare": _hash(train_key, bench_key, self.o.base_model)}

    def needs_merge(self) -> bool:
        return bool(self.req.cfg.get("adapter")) and (self.o.merge == "always" or any(
            registry.benchmark(b)["harness"] not in ("lm-eval",) for b in self.bench_ids()))

    @property
    def train_rows(self) -> int | None:
        return self.o.max_rows or self.o.limit

    @property
    def blimit(self) -> int | None:
        return self.o.bench_limit or self.o.limit

    def bench_ids(self) -> list[str]:
        return self.o.benchmarks or registry.experiment(self.o.experiment).all_benchmarks

    # ---- the stages
    def do_prepare(self) -> dict:
        from ftstudy.data import prepare

        rep = prepare.prepare(self.o.experiment, data=self.o.data, sources=self.o.sources, limit=self.train_rows,
                              out_root=self.o.root / gen.PREPARED_DIR,  # under the study root, never the cwd
                              base_model=self.o.base_model, count_tokens=self.o.count_tokens,
                              hardware=self.o.hardware, sequence_len=self.req.cfg.get("sequence_len"),
                              progress=self.progress, bench_data_dir=self.o.bench_data_dir)
        return {"out_dir": str(rep.out_dir), "contamination": rep.contamination}

    def prepared_paths(self) -> list[Path]:
        """This run's prepared files (under the study root, else as the config names them)."""
        return [self.o.root / ds["path"] if (self.o.root / ds["path"]).exists() else Path(ds["path"])
                for ds in self.req.cfg["datasets"]]

    def contamination(self) -> dict | None:
        """The decontamination figures of this run's prepared files (from their manifests)."""
        from ftstudy.data.decontam import check as decontam_check

        return decontam_check.from_manifests(self.prepared_paths())

    def do_train(self) -> dict:
        folder = train.run_dir(self.req, self.runs)
        resume = bool(train.checkpoints(folder))
        out = train.train(self.req, self.runs, resume=resume, progress=self.progress)
        return {"run_dir": out["run_dir"], "train_loss": out.get("train_loss")}

    def do_merge(self) -> dict:
        folder = train.run_dir(self.req, self.runs)
        if not self.needs_merge():
            return {"skipped": "no benchmark needs merged weights (lm-eval applies the adapter itself)"}
        rep = merge.merge(folder)
        return {"model": rep.get("model", str(folder)), "status": rep["status"]}

    def _bench(self, model: str, adapter: str | None, tag: str) -> dict:
        rows = bench.bench(self.o.experiment, model, adapter, tag, self.o.benchmarks, self.blimit,
                           self.o.bench_data_dir, self.o.judge_url, self.o.judge_model, results_root=self.results,
                           progress=self.progress, judge_api_key_env=self.o.judge_api_key_env,
                           judge_concurrency=self.o.judge_concurrency)
        failed = [r for r in rows if r["status"] == "failed"]
        if failed:
            raise UserError("; ".join(f"{r['benchmark']}: {r['reason']}" for r in failed))
        return {"rows": rows}

    def do_bench_base(self) -> dict:
        return self._bench(self.o.base_model, None, "base")

    def ft_model(self) -> tuple[str, str | None]:
        folder = train.run_dir(self.req, self.runs)
        if not self.req.cfg.get("adapter"):
            return str(folder), None                 # full fine-tuning: the run folder is the model
        if (folder / "merged").is_dir():
            return str(folder / "merged"), None      # merged weights serve every harness
        return self.o.base_model, str(folder)       # base + adapter (lm-eval's peft=)

    def do_bench_ft(self) -> dict:
        from ftstudy.eval import records

        model, adapter = self.ft_model()
        records.supersede(self.results, self.o.experiment, self.o.method, self.bench_ids(),
                          records.fingerprint_of(model, adapter), self.progress)
        return self._bench(model, adapter, self.o.method)

    def do_compare(self) -> dict:
        from ftstudy.study import plan_results

        rows = comparison.compare(self.o.experiment, "base", self.o.method, self.results, self.bench_ids())
        path = plan_results.write(self.results, self.o.experiment, self.o.method, self.o.base_model,
                                  self.ft_model()[0], rows)
        return {"rows": rows, "plan_results": str(path)}

    # ---- the walk
    def stage_plan(self, keys: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """(stage, "run" or "cached") for every stage, in order."""
        keys = keys or self.keys()
        start = STAGES.index(self.o.from_stage) if self.o.from_stage else 0
        plan = []
        for i, stage in enumerate(STAGES):
            rec = self.state.get(stage, {})
            forced = self.o.from_stage is not None and i >= start
            fresh = rec.get("status") == "done" and rec.get("key") == keys[stage] and self.outputs_exist(stage)
            # the same data prepared for another method of this experiment is the same data
            fresh = fresh or (stage in SHARED and self.prepared_elsewhere(keys[stage], stage))
            # compare is cheap and reads what the bench stages left: always recomputed
            plan.append((stage, "cached" if fresh and not forced and stage != "compare" else "run"))
        return plan

    def run(self, dry_run: bool = False, only: str | None = None) -> dict:
        """Walk the stages (or, with `only`, run that one stage: what a Slurm job does)."""
        keys = self.keys()
        plan = self.stage_plan(keys)
        if dry_run:
            return {"plan": plan, "train_command": train.train(self.req, self.runs, dry_run=True)["command"]}
        # one stage at a time (a Slurm job) holds no study-wide lock: jobs of one experiment run side by side and
        # each state update is a short locked read-modify-write (_record)
        self._only = bool(only)
        lock = RunLock(self.o.root / "state" / f".{self.o.experiment}.lock", what=f"the {self.o.experiment} study")
        with contextlib.nullcontext() if only else lock:
            if not only:  # this experiment's study lock is held: a temporary here is a killed writer's
                from ftstudy.eval.harness import work_root

                for folder in (self.results, self.runs, self.o.root / "state", self.o.root / gen.PREPARED_DIR):
                    remove_stale_temporaries(folder / self.o.experiment)
                remove_stale_temporaries(work_root(self.results, self.o.experiment))
            self.state["_options"] = saved_options(self.o)
            for stage, action in plan:
                if only and stage != only:
                    continue
                who = (self.o.experiment, self.o.method, stage)
                if action == "cached":
                    self.progress(f"[{stage}] done and current - skipped")
                    if self.clock:
                        self.clock.skip(*who)
                    if self.state.get(stage, {}).get("status") != "done":  # done under another method's state
                        out = {"contamination": self.contamination()} if stage == "prepare" else None
                        self._record(stage, {"status": "done", "key": keys[stage], "shared": True, "output": out})
                    continue
                self.progress(f"[{stage}] running" + (f" · {self.clock.start(*who)}" if self.clock else ""))
                self._record(stage, {"status": "running", "key": keys[stage], "started": time.time()})
                try:
                    out = getattr(self, "do_" + stage.replace("-", "_"))()
                except BaseException as exc:
                    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    self._record(stage, {"status": status, "key": keys[stage], "error": redact.text(str(exc))[:2000]})
                    raise
                began = self.state[stage]["started"]
                if self.clock:
                    self.clock.finish(*who, seconds=time.time() - began)
                self._record(stage, {"status": "done", "key": keys[stage], "started": began, "finished": time.time(),
                                     "seconds": round(time.time() - began, 1), "output": out})
            if only in (None, "compare"):
                self.write_lock()
        return self.state

    def write_lock(self) -> None:
        """Record what this experiment's results depend on in study.lock.json; warn where the environment moved."""
        from ftstudy.study import study_lock

        folder = train.run_dir(self.req, self.runs)
        data = read_json(folder / "data.json") if (folder / "data.json").exists() else {}
        entry = {"method": self.o.method, "hardware": self.o.hardware, "base_model": self.o.base_model,
                 "seed": registry.experiment(self.o.experiment).seed, "run": str(folder),
                 "datasets": [{"path": d["path"], "sha256": d.get("sha256")} for d in data.get("datasets", [])],
                 "benchmarks": study_lock.result_inputs(self.results, self.o.experiment, ("base", self.o.method),
                                                        self.bench_ids()),
                 "contamination": self.contamination()}
        _, diffs = study_lock.update(self.o.root, f"{self.o.experiment}/{self.o.method}-{self.o.hardware}", entry)
        for d in diffs:
            self.progress(f"warning: the environment differs from study.lock.json: {d}")

    def outputs_exist(self, stage: str) -> bool:
        """A stage recorded as done still has its outputs (nobody deleted them since)."""
        folder = train.run_dir(self.req, self.runs)
        if stage == "prepare":  # and, when this run asks for token counts, the manifests hold them
            paths = self.prepared_paths()
            manifests = [p.with_suffix(".manifest.json") for p in paths]
            return all(p.exists() for p in paths) and (not self.o.count_tokens or all(
                m.exists() and read_json(m).get("tokens") for m in manifests))
        if stage == "train":
            tj = folder / "train.json"  # checked: a hand-edited one is named in one line (a diverged loss may be NaN)
            return tj.exists() and checked_json.read(tj, "train_run", allow_nonfinite=True).get("status") == "completed"
        if stage == "merge":
            return not self.needs_merge() or (folder / "merge.json").exists()
        if stage in ("bench-base", "bench-ft"):
            tag = "base" if stage == "bench-base" else self.o.method
            from ftstudy.eval import records

            return all(records.paths(self.results, self.o.experiment, tag, b)[0].exists() for b in self.bench_ids())
        return True

    def prepared_elsewhere(self, key: str, stage: str = "prepare") -> bool:
        """A shared stage (the data, the base model's benchmarks) done under another method of this experiment."""
        for other in state_path(self.o).parent.glob("*.json"):
            rec = read_state(other).get(stage, {})
            if rec.get("status") == "done" and rec.get("key") == key and self.outputs_exist(stage):
                return True
        return False

    def _record(self, stage: str, rec: dict) -> None:
        if getattr(self, "_only", False):
            with RunLock(state_path(self.o).with_suffix(".lock"), what="the study state", wait=True):
                self.state = {**load_state(self.o), "_options": saved_options(self.o), stage: rec}
                save_state(state_path(self.o), self.state)
            return
        self.state[stage] = rec
        save_state(state_path(self.o), self.state)


def status(root: Path = Path("."), experiment: str | None = None) -> list[dict]:
    """Each stage of each experiment that has state: done, stale (and why), failed (with log), not started."""
    rows = []
    for path in sorted((root / "state").glob("*/*.json")):
        exp = path.parent.name
        if experiment and exp != experiment:
            continue
        method, _, hw = path.stem.partition("-")
        state = read_state(path)
        try:
            current = Study(Options(exp, method, hw, **options_from_state(state)), progress=lambda s: None).keys()
        except Exception:  # the experiment or method no longer exists: show the state as recorded
            current = {}
        for stage in STAGES:
            rec = state.get(stage)
            for other in (path.parent.glob("*.json") if rec is None and stage in SHARED and current else ()):
                r = read_state(other).get(stage) or {}
                if r.get("status") == "done" and r.get("key") == current[stage]:
                    rec = {**r, "error": f"shared: done under {other.stem}"}
            if rec is None:
                st, why = "not started", ""
            elif rec["status"] == "done" and current and rec.get("key") != current.get(stage):
                st, why = "stale", "its inputs changed since it ran"
            else:
                st, why = rec["status"], rec.get("error", "")
            row = {"experiment": exp, "method": method, "hardware": hw, "stage": stage, "status": st, "detail": why}
            if stage == "prepare" and rec and rec["status"] == "done":
                from ftstudy.data.decontam.check import short

                row["contamination"] = (rec.get("output") or {}).get("contamination")
                row["detail"] = "; ".join(filter(None, [why, short(row["contamination"])]))
            rows.append(row)
    return rows
