"""Every lm-eval task name evals/benchmarks.yaml uses exists in the pinned lm-eval (asked offline, in the eval
environment, from lm-eval's own TaskManager index): built-in tasks, fallbacks, named subtasks, and the
built-in tasks our local groups (evals/tasks/*.yaml) are made of."""
import json
import subprocess

import pytest

from ftstudy.core import tool_envs as envs
from ftstudy.config import registry
from ftstudy.core.bundled import evals_dir
from ftstudy.data.decontam.items import task_yaml

pytestmark = pytest.mark.tools

LIST_TASKS = ("import json, sys\nfrom lm_eval.tasks import TaskManager\n"
              "tm = TaskManager(include_path=sys.argv[1])\nprint(json.dumps(sorted(tm.all_tasks)))\n")


def wanted() -> dict[str, str]:
    """task name -> where the registry uses it (counted from the registry, never a literal)."""
    names = {}
    for bid, b in registry.benchmarks().items():
        for h in [b] + ([b["fallback"]] if b.get("fallback") else []):
            if h.get("harness") == "lm-eval":
                names[h["task"]] = bid
        for t in b.get("subtasks", []):
            names[t] = f"{bid} (subtask)"
        if b.get("local_task"):
            group = task_yaml(evals_dir() / "tasks" / f"{b['task']}.yaml")
            for t in group.get("task", []) if isinstance(group.get("task"), list) else []:
                names[t] = f"{bid} (local group member)"
    return names


def test_every_lm_eval_task_name_exists_in_the_pinned_lm_eval():
    python = envs.bin_path("eval")
    res = subprocess.run([str(python), "-c", LIST_TASKS, str(evals_dir() / "tasks")], capture_output=True,
                         text=True, timeout=600, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    known = set(json.loads(res.stdout.strip().splitlines()[-1]))
    names = wanted()
    assert len(known) > 10000 and len(names) >= sum(1 for b in registry.benchmarks().values() if b["harness"] == "lm-eval")
    missing = {t: where for t, where in names.items() if t not in known}
    assert not missing, f"not in the pinned lm-eval: {missing}"
