"""Code benchmarks through bigcode-evaluation-harness (`ftstudy setup bigcode` installs it from its source archive).

HumanEval and MBPP (Python) run in two steps, so that no model-written code runs outside ftstudy's sandbox:
1. bigcode's own `main.py --generation_only` (its HF backend loads the model) writes, in the benchmark's work
   folder (its current directory: bigcode writes `references_<task>.json` there and ignores
   `--save_references_path`), the post-processed generations and the references its task builds (HumanEval:
   the `check` function and `check(entry_point)`; MBPP: the three asserts of `test_list`).
2. bigcode's own evaluation of those files -- the task's `process_results`, i.e. its code_eval metric (programs,
   executor, timeout, pass@k) -- runs as one process inside ftstudy's bubblewrap jail (bigcode_scoring.py: no
   network, read-only view, limits on the whole tree), as `main.py --load_generations_path` would run it.
Other languages (MultiPL-E) are executed by bigcode itself, in a namespace without network.

bigcode reads its datasets by hub id (`openai_humaneval`, `mbpp`); offline, `datasets` finds them in the HF
cache under `<data-dir>/hf_home` (HF_HOME, offline mode), which `stage_datasets()` fills from local rows in the
hub's row shape. Model-written code runs only with --allow-code-execution.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ftstudy.core import runner
from ftstudy.core import tool_envs as envs
from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable
from ftstudy.eval.stats import mean

# bigcode's Python tasks -> the hub dataset (id, config) their Task loads; their programs run in ftstudy's sandbox
PYTHON_TASKS = {"humaneval": ("openai_humaneval", "openai_humaneval"), "mbpp": ("mbpp", "full")}
HARNESS_VERSION = "bigcode-evaluation-harness 8fc5bae6"


def bigcode_available() -> bool:
    try:
        py = envs.bin_path("bigcode")
    except envs.EnvMissing:
        return False
    return runner.run([str(py), "-c", "import bigcode_eval"], quiet=True).returncode == 0


def bigcode_argv(python: str | Path, main_py: str | Path, ctx: BenchContext, bench: dict, out: Path) -> list[str]:
    """bigcode's main.py, greedy, one sample per problem (pure: tests assert it). bigcode writes
    `<stem>_<task>.json` for --save_generations_path and `references_<task>.json` in its current directory."""
    argv = [str(python), str(main_py), "--model", ctx.model, "--tasks", bench["task"], "--n_samples", "1",
            "--do_sample", "False", "--temperature", "0", "--batch_size", "1", "--max_length_generation", "1024",
            "--precision", "bf16" if ctx.device == "cuda" else "fp32"]
    if bench["task"] in PYTHON_TASKS:
        argv += ["--generation_only", "--save_generations", "--save_generations_path", str(out / "generations.json"),
                 "--save_references"]
    else:
        argv += ["--allow_code_execution", "--metric_output_path", str(out / "evaluation_results.json"),
                 "--save_generations", "--save_generations_path", str(out / "generations.json")]
    if ctx.adapter:
        argv += ["--peft_model", ctx.adapter]
    if ctx.limit:
        argv += ["--limit", str(ctx.limit)]
    return argv


def bigcode_env(data_dir: Path | None) -> dict[str, str]:
    """bigcode's environment: with a data folder, the staged HF cache, offline (no hub at run time)."""
    env = {"TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_TRUST_REMOTE_CODE": "0"}
    if data_dir is not None and (Path(data_dir) / "hf_home").is_dir():  # as lm-eval's staged_hf_env
        env.update({"HF_HOME": str((Path(data_dir) / "hf_home").resolve()), "HF_HUB_OFFLINE": "1",
                    "HF_DATASETS_OFFLINE": "1"})
    return env


def unstaged(ctx: BenchContext, bench: dict) -> list[str]:
    """A line per dataset bigcode will read offline (a staged hf_home) that is not there."""
    home = Path(ctx.data_dir) / "hf_home" if ctx.data_dir is not None else None
    if home is None or not home.is_dir():
        return []  # no staged cache: bigcode reads the hub
    lines = []
    for task in bench["task"].split(","):
        if task in PYTHON_TASKS:
            hub, config = PYTHON_TASKS[task]
            cached = home / "datasets" / hub / config
            if not any(cached.glob("*/*/dataset_info.json")):
                lines.append(f"{bench['id']}: {hub} ({config}) is not staged under {cached.parent} (run `ftstudy "
                             "stage-data DIR` on a connected machine, or code.stage_datasets on rows in the hub's shape)")
    return lines


def bigcode_main(python: str | Path) -> Path:
    out = runner.run([str(python), "-c", "import bigcode_eval, os; print(os.path.dirname(os.path.dirname(bigcode_eval.__file__)))"],
                     quiet=True)
    return Path(out.tail[-1].strip()) / "main.py"


def stage_datasets(rows: dict[str, Path], data_dir: Path) -> Path:
    """Write rows in the hub's shape (`{"humaneval": test.jsonl, ...}`) into `<data_dir>/hf_home` as the HF
    datasets cache entries bigcode's `load_dataset(<hub id>)` finds offline. Runs in the bigcode environment.

    Example:
        >>> stage_datasets({"humaneval": Path("openai_humaneval.jsonl")}, Path("bench-data"))  # doctest: +SKIP
        PosixPath('bench-data/hf_home')
    """
    home = Path(data_dir) / "hf_home"
    specs = [f"{PYTHON_TASKS[task][0]}={PYTHON_TASKS[task][1]}={Path(path).resolve()}" for task, path in rows.items()]
    argv = [str(envs.bin_path("bigcode")), str(TOOL_SCRIPTS / "bigcode_stage.py"), str(home / "datasets"), *specs]
    runner.check(runner.run(argv, env={"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
                            quiet=True), "staging bigcode's datasets")
    return home


def no_network(argv: list[str]) -> list[str]:
    """Run a whole harness in a fresh network namespace (no network at all); where `unshare` cannot make one,
    refuse (HarnessUnavailable, one line) rather than let it execute model-written code with the network."""
    probe = shutil.which("unshare")
    if probe and runner.run([probe, "-rn", "true"], quiet=True).returncode == 0:
        return [probe, "-rn", *argv]
    raise HarnessUnavailable("code execution refused: bigcode runs this language's code itself and `unshare -rn` "
                             "cannot give it a namespace without network here (install util-linux; it needs user "
                             "namespaces: sysctl user.max_user_namespaces > 0)")


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """What scoring `bench` will need, checked before any generation: one line per problem (empty: ready).

    Example:
        >>> preflight(BenchContext("code", "m"), {"id": "humaneval", "task": "humaneval"})[0]  # doctest: +SKIP
        'humaneval runs model-written code: pass --allow-code-execution to score it (...)'
    """
    problems = []
    if not ctx.allow_code_execution:
        problems.append("it runs model-written code: pass --allow-code-execution to score it (it runs "
                        "in a bubblewrap sandbox: no network, no host files, limits on the whole tree)")
    from ftstudy.eval import jail

    try:
        jail.require()
    except jail.JailUnavailable as exc:
        problems.append(str(exc))
    try:
        py = envs.bin_path("bigcode")
    except envs.EnvMissing as exc:
        return problems + [str(exc).splitlines()[0] + " (install: ftstudy setup bigcode)"]
    if runner.run([str(py), "-c", "import bigcode_eval"], quiet=True).returncode != 0:
        problems.append(f"bigcode-evaluation-harness is not importable in {py} (reinstall: "
                        "ftstudy setup bigcode --bigcode-source ARCHIVE)")
    elif any(t in PYTHON_TASKS for t in bench["task"].split(",")) and not problems:
        from ftstudy.eval.harness import bigcode_scoring

        problems += [p for p in [bigcode_scoring.version_problem(envs.location("bigcode"))] if p]
    return problems + unstaged(ctx, bench)


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    if not ctx.allow_code_execution and not ctx.dry_run:
        raise HarnessUnavailable(f"{bench['id']} runs model-written code: pass --allow-code-execution to score it "
                                 "(it runs in a bubblewrap sandbox: no network, no host files, limits on the whole tree)")
    if ctx.dry_run:
        argv = bigcode_argv("<bigcode-env>/bin/python", "<bigcode-src>/main.py", ctx, bench, ctx.work_dir(bench["id"]))
        ctx.commands.append(argv)
        return HarnessOutput({}, [], settings={"command": runner.show(argv, bigcode_env(ctx.data_dir))})
    from ftstudy.eval import jail

    try:
        jail.require()  # refuse before generating, with one line saying what to install
    except jail.JailUnavailable as exc:
        raise HarnessUnavailable(str(exc)) from None
    try:
        python = envs.bin_path("bigcode")
    except envs.EnvMissing as exc:
        raise HarnessUnavailable(str(exc).splitlines()[0] + " (install: ftstudy setup bigcode)") from None
    missing = unstaged(ctx, bench)
    if missing:
        raise HarnessUnavailable(missing[0])
    return run_bigcode(ctx, bench, python)


def run_bigcode(ctx: BenchContext, bench: dict, python: Path) -> HarnessOutput:
    work = ctx.work_dir(bench["id"])
    shutil.rmtree(work, ignore_errors=True)  # never read an earlier, interrupted run's files
    work.mkdir(parents=True)
    main_py = bigcode_main(python)
    argv = bigcode_argv(python, main_py, ctx, bench, work)
    python_task = bench["task"] in PYTHON_TASKS
    if not python_task:
        argv = no_network(argv)
    ctx.commands.append(argv)
    runner.check(runner.run(argv, env=bigcode_env(ctx.data_dir), cwd=work, log=work / "bigcode.log", quiet=True),
                 "bigcode-evaluation-harness", work / "bigcode.log")
    settings = {"harness": "bigcode", "harness_version": HARNESS_VERSION, "n_samples": 1, "do_sample": False}
    if not python_task:
        res = json.loads((work / "evaluation_results.json").read_text())
        metrics = {f"{t}.pass@1": v["pass@1"] for t, v in res.items() if isinstance(v, dict) and "pass@1" in v}
        metrics["pass@1"] = mean(list(metrics.values()))
        return HarnessOutput(metrics, [], HARNESS_VERSION, {**settings, "execution": "bigcode, no network"})
    task = bench["task"]
    job = {"task": task, "generations": json.loads((work / f"generations_{task}.json").read_text()),
           "references": json.loads((work / f"references_{task}.json").read_text())}
    [out] = score([job], python, main_py.parent)
    return HarnessOutput(out.metrics, out.samples, HARNESS_VERSION, {**settings, **out.settings}, out.subset_ids)


def score(jobs: list[dict], python: Path | None = None, src: Path | None = None) -> list[HarnessOutput]:
    """Score saved generations with bigcode's own evaluation (its task's process_results: code_eval's programs,
    executor, timeout and pass@k), run as one jailed process for all `jobs` ({task, generations, references}).

    Example:
        >>> score([{"task": "mbpp", "generations": [["def f(): pass"]], "references": ["assert f() == 1"]}])[0].metrics  # doctest: +SKIP
        {'pass@1': 0.0}
    """
    from ftstudy.eval.harness import bigcode_scoring

    python = python or envs.bin_path("bigcode")
    src = src or bigcode_main(python).parent
    outs = []
    for job, res in zip(jobs, bigcode_scoring.run_jobs(envs.location("bigcode"), src, jobs)):
        samples = [{"id": str(i), "score": float(r[0] == "passed"), "output": g[0],
                    "status": "passed" if r[0] == "passed" else "timeout" if r[0] == "timed out" else "failed",
                    "detail": r[0][:200]}
                   for i, (g, r) in enumerate(zip(job["generations"], res["outcomes"]))]
        outs.append(HarnessOutput(res["metrics"], samples, HARNESS_VERSION,
                                  {"execution": "bigcode's code_eval inside ftstudy's jail"}, [s["id"] for s in samples]))
    return outs
