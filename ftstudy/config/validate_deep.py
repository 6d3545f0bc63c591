"""`ftstudy validate --deep`: Axolotl's own validation, run in the train environment."""
from __future__ import annotations

import json
from pathlib import Path

from ftstudy.core import tool_envs as envs
from ftstudy.core.runner import run
from ftstudy.config.validate_schema import Problem
from ftstudy.core.bundled import TOOL_SCRIPTS

SCRIPT = TOOL_SCRIPTS / "axolotl_validate.py"


def axolotl_argv(python: str | Path, configs: list[str | Path]) -> list[str]:
    return [str(python), str(SCRIPT), *map(str, configs)]


def axolotl_check_many(configs: list[str | Path]) -> dict[str, list[Problem]]:
    """Problems Axolotl itself finds in each config (an empty list when it accepts it), in one process."""
    env = {"AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    reports = {}

    def collect(line: str) -> None:  # every file's line, however much Axolotl logs between them
        if line.startswith('{"path"'):
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a log line cut into it: that file is reported as not checked
                return
            reports[r["path"]] = [Problem(e["loc"], f"Axolotl: {e['msg']}", "") for e in r["errors"]]

    res = run(axolotl_argv(envs.bin_path("train"), configs), env=env, quiet=True, on_line=collect)
    failed = Problem("", "Axolotl's validation could not run: " + " | ".join(res.tail[-5:]), "see `ftstudy doctor`")
    return {str(c): reports.get(str(c), [failed]) for c in configs}

