"""The study as a graph of Slurm jobs (pure: the graph, the job scripts and the sbatch argv).

Each experiment × method becomes prepare → train → merge → bench-ft → compare, chained with `afterok`; the
shared stages (prepare, and bench-base, which compare also waits for) are submitted once per experiment,
under its first method. A stage the study's cache already holds as done is not submitted, and nothing waits
for it. Resources come from the hardware profile (nodes, GPUs per node, CPUs and memory per GPU), training
time from the planner's estimate × 1.5 + 30 minutes; every job writes one log, named in its script.

Plain `sbatch`/`squeue`/`scancel` argv rather than submitit: the user can read and resubmit the scripts by hand
(submitit pickles Python callables instead), and the three commands are all a job graph needs.

Example:
    >>> from ftstudy.study import study
    >>> o = study.Options("classification", "lora", "cpu", "./tiny")
    >>> [(j.stage, j.deps) for j in graph([o], done=lambda o, s: False)][:3]
    [('prepare', []), ('bench-base', []), ('train', ['classification.prepare'])]
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ftstudy.config import profiles

# Per stage, besides training: GPUs (on GPU profiles), CPUs, memory (GB) and the time limit (minutes).
STAGE_RESOURCES = {
    "prepare": {"gpus": 0, "cpus": 8, "mem_gb": 32, "minutes": 120},
    "merge": {"gpus": 1, "cpus": 8, "mem_gb": 64, "minutes": 60},
    "bench-base": {"gpus": 1, "cpus": 8, "mem_gb": 64, "minutes": 360},
    "bench-ft": {"gpus": 1, "cpus": 8, "mem_gb": 64, "minutes": 360},
    "compare": {"gpus": 0, "cpus": 1, "mem_gb": 4, "minutes": 15},
}
CPUS_PER_GPU, MEM_GB_PER_GPU = 8, 64
CPU_PROFILE = {"cpus": 1, "mem_gb": 4}  # the tiny model: one core, a few GB, any stage
TRAIN_MARGIN, TRAIN_EXTRA_MIN, TRAIN_DEFAULT_MIN = 1.5, 30, 24 * 60


@dataclass
class Job:
    """One sbatch submission: one stage of one experiment × method (or of the experiment, when shared)."""

    name: str
    stage: str
    options: Any  # study.Options the stage runs with
    deps: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        o = self.options
        return f"{o.experiment}" if self.shared else f"{o.experiment}/{o.method}-{o.hardware}"

    @property
    def shared(self) -> bool:
        return self.stage in ("prepare", "bench-base")


def graph(opts: list[Any], done: Callable[[Any, str], bool], train_minutes: Callable[[Any], int] | None = None) -> list[Job]:
    """Jobs for every options entry (one per experiment × method), skipping stages `done(options, stage)`."""
    jobs: list[Job] = []
    names: set[str] = set()
    for o in opts:
        exp = o.experiment
        for shared in ("prepare", "bench-base"):
            name = f"{exp}.{shared}"
            if name not in names and not done(o, shared):
                jobs.append(Job(name, shared, o, [], resources(shared, o.hardware)))
                names.add(name)
        prev = f"{exp}.prepare"
        for stage in ("train", "merge", "bench-ft", "compare"):
            if done(o, stage):
                continue
            name = f"{exp}.{o.method}-{o.hardware}.{stage}"
            deps = [prev] + ([f"{exp}.bench-base"] if stage == "compare" else [])
            minutes = (train_minutes or (lambda _o: TRAIN_DEFAULT_MIN))(o) if stage == "train" else None
            jobs.append(Job(name, stage, o, [d for d in deps if d in names], resources(stage, o.hardware, minutes)))
            names.add(name)
            prev = name
    return jobs


def resources(stage: str, hardware: str, minutes: int | None = None) -> dict[str, Any]:
    """Nodes, GPUs per node, CPUs, memory and time of one stage's job on a profile."""
    prof = profiles.profile(hardware)
    if stage == "train":
        per_node = prof["gpus_per_node"] if prof["gpu"] else 0
        out = {"nodes": prof["nodes"], "gpus_per_node": per_node, "cpus": CPUS_PER_GPU * max(per_node, 1),
               "mem_gb": MEM_GB_PER_GPU * max(per_node, 1), "minutes": minutes or TRAIN_DEFAULT_MIN}
    else:
        r = STAGE_RESOURCES[stage]
        out = {"nodes": 1, "gpus_per_node": r["gpus"] if prof["gpu"] else 0, "cpus": r["cpus"], "mem_gb": r["mem_gb"],
               "minutes": r["minutes"]}
    if not prof["gpu"]:
        out.update(CPU_PROFILE)
    return out


def train_minutes(hours: float | None) -> int:
    """The time limit for a training job: the planner's hours with a margin, or a day when it has none."""
    return int(hours * 60 * TRAIN_MARGIN + TRAIN_EXTRA_MIN) if hours else TRAIN_DEFAULT_MIN


def hhmm(minutes: int) -> str:
    """Slurm's time format: H:MM:SS under a day, D-HH:MM:SS from one day on (`hhmm(1530)` -> '1-01:30:00')."""
    days, rest = divmod(minutes, 24 * 60)
    return f"{days}-{rest // 60:02d}:{rest % 60:02d}:00" if days else f"{rest // 60}:{rest % 60:02d}:00"


def script(job: Job, *, python: str, options_file: Path, cwd: Path, log: Path, partition: str | None = None,
           account: str | None = None, time: str | None = None) -> str:
    """The sbatch script of one job: readable, and resubmittable by hand with `sbatch [--dependency=...] FILE`."""
    r = job.resources
    lines = ["#!/bin/bash", f"#SBATCH --job-name=ftstudy.{job.name}", f"#SBATCH --output={log}",
             f"#SBATCH --nodes={r['nodes']}", "#SBATCH --ntasks-per-node=1", f"#SBATCH --cpus-per-task={r['cpus']}",
             f"#SBATCH --mem={r['mem_gb']}G", f"#SBATCH --time={time or hhmm(r['minutes'])}"]
    if r["gpus_per_node"]:
        lines.append(f"#SBATCH --gpus-per-node={r['gpus_per_node']}")
    lines += [f"#SBATCH --partition={partition}"] if partition else []
    lines += [f"#SBATCH --account={account}"] if account else []
    o = job.options
    stage_cmd = [python, "-m", "ftstudy.study.slurm.job", str(options_file), job.stage]
    # several nodes: srun starts the stage once per node; train reads its rank from SLURM_NODEID
    run = ["srun", "--ntasks-per-node=1", *stage_cmd] if r["nodes"] > 1 else stage_cmd
    lines += [f"# ftstudy: stage {job.stage} of {o.experiment}" + ("" if job.shared else f" × {o.method}")
              + f" on {o.hardware}; waits for: {', '.join(job.deps) or 'nothing'}",
              "# resubmit by hand: sbatch [--dependency=afterok:JOBID[:JOBID]] THIS_FILE",
              "set -euo pipefail", f"cd {shlex.quote(str(cwd))}", "exec " + shlex.join(run), ""]
    return "\n".join(lines)


def sbatch_argv(script_path: Path, dep_ids: list[str]) -> list[str]:
    argv = ["sbatch", "--parsable"]
    if dep_ids:
        argv.append("--dependency=afterok:" + ":".join(dep_ids))
    return argv + [str(script_path)]


def squeue_argv(job_ids: list[str]) -> list[str]:
    """Every state slurmctld still remembers (finished jobs for MinJobAge seconds) with the pending reason."""
    return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%r", "--jobs=" + ",".join(job_ids)]


def scancel_argv(job_ids: list[str]) -> list[str]:
    return ["scancel", *job_ids]
