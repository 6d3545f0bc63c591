"""Submit the study's job graph to Slurm, read the jobs' states, cancel them (sbatch/squeue/scancel via runner).

What was submitted is recorded in <root>/slurm/jobs.json (job name -> id, script, log); the scripts, the
options each stage runs with and the logs live beside it. A rerun asks the study's stage cache what is done,
keeps jobs that are still queued or running, cancels those whose dependency failed (Slurm would hold them
forever) and submits the rest.

Example:
    $ ftstudy run --all --executor slurm --partition gpu --account proj42 --hardware h100x8
    $ ftstudy status          # stage state and Slurm state side by side
    $ ftstudy cancel
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Callable

from ftstudy.study.slurm import graph as slurm
from ftstudy.study import study
from ftstudy.core import checked_json, redact
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import atomic_write, write_json
from ftstudy.core.names import under
from ftstudy.core.runner import run

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}
DEAD_REASON = "DependencyNeverSatisfied"


def folder(root: Path) -> Path:
    return root / "slurm"


def load_jobs(root: Path) -> dict[str, dict]:
    """What was submitted, checked (core/file_schemas/slurm_jobs.schema.json): a hand-edited file is one line."""
    p = folder(root) / "jobs.json"
    return checked_json.read(p, "slurm_jobs") if p.exists() else {}


def _call(argv: list[str]) -> tuple[int, list[str]]:
    lines: list[str] = []
    res = run(argv, quiet=True, on_line=lines.append)
    return res.returncode, lines


def states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """id -> (Slurm state, reason) for the jobs slurmctld still knows; forgotten ones are absent."""
    if not job_ids:
        return {}
    rc, lines = _call(slurm.squeue_argv(job_ids))
    if rc != 0 and len(job_ids) > 1:  # squeue refuses the whole list when it knows none of them
        out: dict[str, tuple[str, str]] = {}
        for j in job_ids:
            out.update(states([j]))
        return out
    found = {}
    for ln in lines if rc == 0 else []:
        parts = ln.strip().split("|")
        if len(parts) == 3:
            found[parts[0]] = (parts[1], parts[2])
    return found


def stage_done(o: study.Options) -> Callable[[str], bool]:
    """The stage cache's verdict for one experiment × method (compare: done once it ran on current inputs)."""
    s = study.Study(o, progress=lambda m: None)
    plan = dict(s.run(dry_run=True)["plan"])
    keys = s.keys()
    rec = s.state.get("compare", {})
    compare = (rec.get("status") == "done" and rec.get("key") == keys["compare"]
               and all(a == "cached" for st, a in plan.items() if st != "compare"))
    return lambda stage: compare if stage == "compare" else plan[stage] == "cached"


def planned_minutes(o: study.Options) -> int:
    try:
        from ftstudy.plan import estimate as planner
        from ftstudy.config import registry

        s = study.Study(o, progress=lambda m: None)
        hours = planner.estimate(s.req.cfg, o.hardware, registry.experiment(o.experiment), o.method)["hours"]
    except Exception:  # a model or data the planner cannot read: a day, the default limit
        hours = None
    return slurm.train_minutes(hours)


def submit(opts: list[study.Options], root: Path, partition: str | None = None, account: str | None = None,
           time_limit: str | None = None, dry_run: bool = False, echo: Callable[[str], None] = print) -> list[dict]:
    """Submit what is not done; returns one row per job (name, id or 'dry-run', deps, script, log)."""
    root = root.resolve()
    for o in opts:  # each job reads its options from a file: a credential in the judge URL would be stored there
        if o.judge_url and redact.url(o.judge_url) != o.judge_url:
            raise UserError(f"--judge-url {redact.url(o.judge_url)} carries a credential (user-info or a query); a "
                            f"Slurm job would have to store it in {folder(root)}. Put the key in "
                            f"${o.judge_api_key_env} (--judge-api-key-env) and pass the URL without it")
    verdicts = {id(o): stage_done(o) for o in opts}
    jobs = slurm.graph(opts, lambda o, st: verdicts[id(o)](st), planned_minutes)
    record = load_jobs(root)
    known = states([r["job_id"] for r in record.values()]) if record and not dry_run else {}
    dead = [r["job_id"] for r in record.values() if known.get(r["job_id"], ("", ""))[1] == DEAD_REASON]
    if dead:
        _call(slurm.scancel_argv(dead))
    ids: dict[str, str] = {}
    rows = []
    for job in jobs:
        o = job.options
        opts_file = under(folder(root), "{experiment}", "{method}-{hardware}.options.json", where="slurm",
                          experiment=o.experiment, method=o.method, hardware=o.hardware)
        script_path = under(folder(root) / "jobs", "{job}.sh", where="slurm", job=job.name)
        log = folder(root) / "logs" / f"{job.name}.%j.log"
        text = slurm.script(job, python=sys.executable, options_file=opts_file, cwd=Path.cwd().resolve(), log=log,
                            partition=partition, account=account, time=time_limit)
        prev = record.get(job.name, {})
        if dry_run:
            echo(f"# {job.name}   after: {', '.join(job.deps) or '-'}\n{text}")
            rows.append({"name": job.name, "job_id": "dry-run", "deps": job.deps})
            continue
        write_json(opts_file, {**dataclasses.asdict(o), "root": str(root)})
        log.parent.mkdir(parents=True, exist_ok=True)  # slurmd does not create the log's folder
        atomic_write(script_path, text)
        state = known.get(prev.get("job_id", ""), ("", ""))
        if state[0] in ACTIVE and state[1] != DEAD_REASON:
            ids[job.name] = prev["job_id"]  # still queued or running: wait for it rather than submit it twice
            rows.append({**prev, "name": job.name, "kept": True})
            continue
        argv = slurm.sbatch_argv(script_path, [ids[d] for d in job.deps if d in ids])
        rc, lines = _call(argv)
        if rc != 0:
            raise UserError(f"sbatch refused {script_path}: {' '.join(lines[-3:])}. Check --partition/--account/"
                            "--time against `sinfo`; the scripts written so far are in " + str(folder(root)))
        job_id = lines[-1].split(";")[0].strip()
        ids[job.name] = job_id
        record[job.name] = {"job_id": job_id, "stage": job.stage, "experiment": o.experiment,
                            "method": None if job.shared else o.method, "hardware": o.hardware,
                            "script": str(script_path), "log": str(log).replace("%j", job_id),
                            "deps": job.deps, "submitted": time.time()}
        write_json(folder(root) / "jobs.json", record)
        rows.append({**record[job.name], "name": job.name})
        echo(f"submitted {job.name} as job {job_id}" + (f" (after {', '.join(job.deps)})" if job.deps else ""))
    return rows


def annotate(rows: list[dict], root: Path) -> list[dict]:
    """Add each stage's Slurm job, state and log to `ftstudy status` rows (shared stages: the experiment's job)."""
    record = load_jobs(root)
    if not record:
        return rows
    live = states([r["job_id"] for r in record.values()])
    for row in rows:
        name = (f"{row['experiment']}.{row['stage']}" if row["stage"] in study.SHARED
                else f"{row['experiment']}.{row['method']}-{row['hardware']}.{row['stage']}")
        rec = record.get(name)
        if not rec:
            continue
        st = live.get(rec["job_id"], ("finished" if row["status"] == "done" else "gone", ""))
        row.update({"job_id": rec["job_id"], "slurm": st[0] + (f" ({st[1]})" if st[1] not in ("", "None") else ""),
                    "log": rec["log"]})
        if st[0] in ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL") or row["status"] == "failed":
            row["detail"] = (row["detail"] + "; " if row["detail"] else "") + f"log: {rec['log']}"
    return rows


def cancel(root: Path, experiment: str | None = None) -> list[str]:
    """Cancel the study's jobs that are still queued or running; returns their ids."""
    record = {k: v for k, v in load_jobs(root).items() if not experiment or v["experiment"] == experiment}
    live = states([r["job_id"] for r in record.values()])
    ids = [j for j, (st, _) in live.items() if st in ACTIVE]
    if ids:
        rc, lines = _call(slurm.scancel_argv(ids))
        if rc != 0:
            raise UserError(f"scancel failed: {' '.join(lines[-3:])}")
    return ids


def dumps(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=str)
