"""bigcode-evaluation-harness's own evaluation of saved generations, run as one process inside ftstudy's jail.

bigcode scores HumanEval and MBPP with its task's `process_results(generations, references)`: its code_eval
metric builds each program (`generation + "\\n" + reference`), executes it in its own executor (a forked process
with a 3 s timeout and `reliability_guard`, but the host's network and files) and estimates pass@k. ftstudy runs
that same code -- tool_env_scripts/bigcode_score.py importing the installed bigcode_eval -- as one jailed process
(ftstudy/eval/jail.py: bubblewrap, no network, read-only view, uid 65534, memory and process limits on the whole
tree), so every execution of model-written code happens inside the jail.

The jail shows only its Python, that Python's standard library and one task folder. The folder therefore holds
the bigcode environment's packages and bigcode's source as hard links (no copy; a copy where the filesystem
differs), the few system libraries their extensions load (libstdc++, ...), the script and the jobs.

Example:
    >>> run_jobs(env, src, [{"task": "humaneval", "generations": [["def f(): ..."]], "references": ["..."]}])  # doctest: +SKIP
    [{'metrics': {'pass@1': 0.0}, 'outcomes': [['failed: ...']]}]
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ftstudy.core import runner
from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.eval import jail
from ftstudy.eval.harness import HarnessUnavailable

MEMORY_MB = 4096   # the whole tree: bigcode_eval imports torch, transformers and datasets before it scores
MAX_PROCS = 256    # tasks, threads included: code_eval runs up to 16 checks at once, each a manager + a process


def site_packages(env: Path) -> Path:
    found = sorted(Path(env).glob("lib/python3*/site-packages"))
    if not found:
        raise HarnessUnavailable(f"{env}: no lib/python3*/site-packages (reinstall: ftstudy setup bigcode)")
    return found[-1]


def version_problem(env: Path) -> str | None:
    """A line when the jail's Python cannot load the environment's compiled packages (another minor version)."""
    want = site_packages(env).parent.name  # python3.11
    rc, got = runner.capture([jail.python(), "-I", "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"])
    if rc != 0 or got != want:
        return (f"bigcode's evaluation runs in the jail with {jail.python()} ({got or 'did not start'}), which cannot "
                f"load the bigcode environment's {want} packages: rebuild it with that Python "
                f"(ftstudy setup bigcode from a {got or 'working'} interpreter)")
    return None


@functools.lru_cache(maxsize=None)
def system_libraries(site: Path) -> tuple[str, ...]:
    """The host libraries the packages' compiled extensions load that the jail does not already show."""
    objects = [str(p) for p in site.rglob("*.so*") if p.is_file()]
    ldd = shutil.which("ldd")
    if not ldd or not objects:
        return ()
    out = runner.capture([ldd, *objects], timeout=120)[1]
    shown = {os.path.realpath(p) for p in jail.python_files()}
    libs = set(re.findall(r"=>\s*(/\S+)\s+\(0x", out))
    return tuple(sorted(p for p in libs if not p.startswith(str(site)) and os.path.realpath(p) not in shown))


def link_tree(src: Path, dest: Path) -> None:
    try:
        shutil.copytree(src, dest, symlinks=True, copy_function=os.link)
    except (OSError, shutil.Error):  # another filesystem: a copy (slower, same content)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


def run_jobs(env: Path, src: Path, jobs: list[dict]) -> list[dict]:
    """Score each job (`task`, `generations`, `references`) with bigcode's own `process_results`, jailed."""
    problem = version_problem(env)
    if problem:
        raise HarnessUnavailable(problem)
    site = site_packages(env)
    root = Path(tempfile.mkdtemp(prefix="ftstudy-bigcode-"))
    try:
        os.chmod(root, 0o711)  # bubblewrap runs as uid 65534 when ftstudy is root: it must reach /task
        task = root / "task"
        link_tree(site, task / "site-packages")
        link_tree(src / "bigcode_eval", task / "src" / "bigcode_eval")
        (task / "lib").mkdir()
        for lib in system_libraries(site):
            shutil.copy(lib, task / "lib" / os.path.basename(lib))
        shutil.copy(TOOL_SCRIPTS / "bigcode_score.py", task / "bigcode_score.py")
        (task / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
        for path in (task, task / "lib", task / "src"):
            os.chmod(path, 0o755)
        for path in (task / "bigcode_score.py", task / "jobs.json", *(task / "lib").iterdir()):
            os.chmod(path, 0o644)
        n = sum(len(g) for job in jobs for g in job["generations"])
        with open(root / "out", "w+b") as out, open(root / "err", "w+b") as err:
            ran = jail.run_jailed(task, ["/task/bigcode_score.py", "/task/jobs.json", "/task/lib",
                                         "/task/site-packages", "/task/src"],
                                  timeout_s=180 + 4 * n, memory_mb=MEMORY_MB, max_procs=MAX_PROCS,
                                  stdout=out, stderr=err)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = stdout.strip().splitlines()
    if ran.returncode != 0 or ran.timed_out or not lines:
        why = "timed out" if ran.timed_out else "ran out of memory" if ran.oom else f"exit {ran.returncode}"
        tail = (stderr.strip().splitlines() or [""])[-1][:300]
        raise HarnessUnavailable(f"bigcode's evaluation in the jail failed ({why}): {tail}")
    return json.loads(lines[-1])
