"""What a Slurm job runs: one stage of one experiment × method, with the options the study was submitted with.

    python -m ftstudy.study.slurm.job slurm/classification/lora-cpu.options.json train

Stage state goes to the study's state/ as with `ftstudy run` (the stage cache decides what a rerun submits).
In a multi-node training job every node runs this under srun; nodes other than 0 only run their share of the
training (train.py owns that), node 0 records the state.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ftstudy.study import study
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import read_json


def options(path: Path) -> study.Options:
    d = read_json(path)
    d["root"] = Path(d["root"])
    for key in ("data", "sets", "sources"):
        d[key] = tuple(d.get(key) or ())
    return study.Options(**d)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in study.STAGES:
        print(f"usage: python -m ftstudy.study.slurm.job OPTIONS.json STAGE  (STAGE: {', '.join(study.STAGES)})",
              file=sys.stderr)
        return 2
    progress = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731 - the job's log
    try:
        o = options(Path(argv[0]))
        s = study.Study(o, progress=progress)
        if argv[1] == "train" and int(os.environ.get("SLURM_NODEID") or 0) > 0:
            from ftstudy.train import train

            train.train(s.req, s.runs, resume=bool(train.checkpoints(train.run_dir(s.req, s.runs))), progress=progress)
        else:
            s.run(only=argv[1])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
