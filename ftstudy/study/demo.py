"""The demo study: a small but real study on CPU with the tiny local model and bundled data.

Two experiments through every stage - prepare, Axolotl training, merge, bench base and fine-tuned, compare,
report - with classification run by two methods (LoRA vs full, as the study plan's phase 1 does):

    classification  AG News-shaped topic labels    lm-eval multiple choice (acc)        lora (peft=), full
    tool_use        xLAM-shaped function calling   ftstudy's tool-call scorer, served   full
                                                   (exact match; tool selection)

The data (ftstudy/study/demo_data/) was written for the project; train and test splits never overlap. The tiny
model is a base model in miniature: briefly pretrained on a bundled general corpus that holds neither task
(ftstudy/tool_env_scripts/make_corpus.py), so fine-tuning, LoRA included, adapts a model that already models language.
What the demo shows is measured, not arranged: the report gives each delta with its paired bootstrap CI and says
plainly when a delta is not significant.

Same numbers on every machine: seeds everywhere (model, data order, benchmark subsets, decoding), greedy
decoding, and one fixed thread count for every CPU computation (tiny.THREADS, exported before any tool starts).

Example:
    $ ftstudy demo                 # under 5 minutes on 2 cores once the environments are installed
    $ ftstudy demo --quick         # every stage once, minimal sizes (CI smoke test)
"""
from __future__ import annotations

import concurrent.futures
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


DATA = Path(__file__).with_name("demo_data")


@dataclass(frozen=True)
class DemoRun:
    experiment: str
    method: str
    data: str
    benchmarks: list[str]
    sets: tuple[str, ...] = ()
    max_steps: int | None = None
    limit: int | None = None
    bench_limit: int | None = None
    count_tokens: bool = True
    merge: str = "auto"


# A tiny model needs a far higher learning rate than a 7B model; everything else is the cpu profile's. No token
# counting (it is one more Axolotl start-up per run, and the demo's rows all fit), and the LoRA adapter is
# applied by lm-eval itself (peft=) rather than merged first: each would add a tool start-up and no result.
FULL = (
    DemoRun("classification", "lora", "ag_news_train.jsonl", ["ag_news"],
            ("learning_rate=0.003", "num_epochs=1"), bench_limit=120, count_tokens=False),
    DemoRun("classification", "full", "ag_news_train.jsonl", ["ag_news"],
            ("learning_rate=0.001", "num_epochs=1"), bench_limit=120, count_tokens=False),
    # Exact match needs the argument values copied from the query, not only the right function: both metrics
    # come from the same generations. One epoch: exact match 0.117 -> 0.233, CI [+0.050, +0.200]; two epochs
    # reach 0.383, CI [+0.167, +0.367], at twice this leg's training time (the demo's largest).
    DemoRun("tool_use", "full", "xlam_train.jsonl", ["xlam_toolcall", "xlam_tool_selection"],
            ("learning_rate=0.001", "num_epochs=1", "sequence_len=1024"), bench_limit=60, count_tokens=False),
)
# Every stage once, as fast as the tools start: one experiment, a few steps, a few items, no token counting.
QUICK = (
    DemoRun("classification", "lora", "ag_news_train.jsonl", ["ag_news"], ("learning_rate=0.003",), max_steps=3,
            limit=40, bench_limit=8, count_tokens=False),
)


# Seconds of each stage, for the ETAs before anything was measured here: half of what each took on the shared
# 2-core development machine under a load of 5-9; a rerun uses the seconds recorded in its own
# state/, and every ETA is rescaled by this machine's measured speed as stages finish (ftstudy/study/eta.py).
REFERENCE_S = {"prepare": 0.1, "train": 70, "merge": 0.1, "bench-base": 10, "bench-ft": 10, "compare": 0.1}
REFERENCE_TRAIN_S = {("classification", "lora"): 76, ("classification", "full"): 33, ("tool_use", "full"): 72}


def expected_seconds(out: Path, runs: tuple[DemoRun, ...]) -> dict[tuple[str, str, str], float]:
    """Per (experiment, method, stage): the seconds it took in this folder's last run, else the reference."""
    from ftstudy.study import study
    from ftstudy.study.study_state import read_state

    out_exp: dict[tuple[str, str, str], float] = {}
    for r in runs:
        path = out / "state" / r.experiment / f"{r.method}-cpu.json"
        state = read_state(path) if path.exists() else {}
        for stage in study.STAGES:
            took = (state.get(stage) or {}).get("seconds")
            ref = REFERENCE_TRAIN_S.get((r.experiment, r.method), REFERENCE_S[stage]) if stage == "train" else REFERENCE_S[stage]
            out_exp[(r.experiment, r.method, stage)] = float(took) if took else float(ref)
    return out_exp


LORA_R, LORA_ALPHA, LORA_SEED = 16, 32, 42


def initial_adapter(out: Path, model: Path) -> Path:
    """The LoRA adapter every demo LoRA run starts from (tool_env_scripts/init_lora.py: A seeded, B zero), built once.
    Axolotl's own initialisation was not the same from one run to the next; this one is."""
    from ftstudy.core import tool_envs as envs
    from ftstudy.core import runner
    from ftstudy.train import tiny
    from ftstudy.core.bundled import TOOL_SCRIPTS

    path = out / f"lora-init-r{LORA_R}-a{LORA_ALPHA}-s{LORA_SEED}"
    if (path / "adapter_model.safetensors").exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    argv = [envs.bin_path("train"), TOOL_SCRIPTS / "init_lora.py", "--model", model, "--out", tmp, "--r", LORA_R,
            "--alpha", LORA_ALPHA, "--seed", LORA_SEED]
    runner.check(runner.run(argv, env={"HF_HUB_OFFLINE": "1", **tiny.THREAD_ENV}, quiet=True), "the initial LoRA adapter")
    os.replace(tmp, path)
    return path


def lora_sets(out: Path, model: Path) -> tuple[str, ...]:
    """Start from the seeded initial adapter, without dropout: nothing random is left in a LoRA run."""
    return (f"lora_model_dir={initial_adapter(out, model)}", "lora_dropout=0", f"lora_r={LORA_R}",
            f"lora_alpha={LORA_ALPHA}")


def options_of(r: DemoRun, out: Path, model: Path, root: Path | None = None):
    """The study.Options of one demo run in `out` (its seeded LoRA start built there first), studied into
    `root` (default: `out`)."""
    from ftstudy.study import study

    sets = r.sets + (lora_sets(out, model) if r.method == "lora" else ())
    return study.Options(r.experiment, r.method, "cpu", str(model), (str(DATA / r.data),), sets, r.limit, r.max_steps,
                         str(DATA / "bench"), r.benchmarks, root=root or out, bench_limit=r.bench_limit,
                         count_tokens=r.count_tokens, merge=r.merge)


def run(out: Path, quick: bool = False, progress: Callable[[str], None] = print, echo: Callable[[str], None] = print) -> bool:
    """Run the demo study into `out`; returns True when every stage ran (and, in full mode, reports verdicts)."""
    from ftstudy.train import tiny
    from ftstudy.core.file_locks import RunLock

    out.mkdir(parents=True, exist_ok=True)
    os.environ.update(tiny.THREAD_ENV)  # inherited by Axolotl, lm-eval and the server: the same sums everywhere
    # the lock comes before any work: a second demo into the same folder refuses at once, building nothing
    with RunLock(out / "state" / ".demo.lock", what=f"the demo study in {out}"):
        return _run(out, quick, progress, echo)


def _run(out: Path, quick: bool, progress: Callable[[str], None], echo: Callable[[str], None]) -> bool:
    from ftstudy.core import runner
    from ftstudy.study import eta
    from ftstudy.study import report
    from ftstudy.study import study
    from ftstudy.train import tiny

    started = time.time()
    runs = QUICK if quick else FULL
    clock = eta.Clock(expected_seconds(out, runs))
    lanes = lanes_of(runs)
    clock.lanes = min(len(lanes), _cores())
    progress(f"demo study in {out.resolve()} ({'quick' if quick else 'full'} mode; about {eta.fmt(clock.left())} "
             f"expected before measuring this machine)")
    model = tiny.build(out / "tiny-model", seed=0, log=progress)
    # before the lanes start: the seeded LoRA start is built once, never by two lanes at a time
    options = {(r.experiment, r.method): options_of(r, out, model) for r in runs}
    timings: dict[str, float] = {"tiny model": round(time.time() - started, 1)}

    def lane(todo: list[DemoRun]) -> None:
        for r in todo:
            t0 = time.time()
            say = tagged(progress, f"{r.experiment}·{r.method}") if clock.lanes > 1 else progress
            say(f"=== {r.experiment} · {r.method} === (study: {eta.fmt(clock.left())} left)")
            study.Study(options[r.experiment, r.method], progress=say, clock=clock).run()
            timings[f"{r.experiment}/{r.method}"] = round(time.time() - t0, 1)

    # Each experiment's runs in order (its base scores are reused by its later methods), experiments side by side,
    # one per core: every tool runs on one thread (tiny.THREADS), so the numbers do not depend on the overlap.
    # Ctrl-C or SIGTERM reaches the lanes' tools (and starts no new one) while the main thread waits for them.
    with runner.forwarding_signals(), concurrent.futures.ThreadPoolExecutor(max_workers=clock.lanes) as pool:
        futures = [pool.submit(lane, todo) for todo in lanes]
    failed = [exc for exc in (f.exception() for f in futures) if exc]
    if failed:
        raise failed[0]  # the other lanes ran to the end: their work is kept, and a rerun resumes this one
    timings = {"tiny model": timings["tiny model"], **{f"{r.experiment}/{r.method}": timings[f"{r.experiment}/{r.method}"]
                                                      for r in runs}}  # in the order of the runs, not of finishing
    paths = report.write(out, out / "report")
    echo("\n" + summary(out))
    echo(f"\nreport: {paths[0].resolve()}")
    echo(f"demo finished in {time.time() - started:.0f} s  ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})")
    return True


def tagged(progress: Callable[[str], None], who: str) -> Callable[[str], None]:
    """`progress` with each line prefixed by its lane, so side-by-side runs stay readable."""
    return lambda text: progress("\n".join(f"[{who}] {line}" if line else line for line in text.split("\n")))


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def lanes_of(runs: tuple[DemoRun, ...]) -> list[list[DemoRun]]:
    """The runs grouped by experiment, in order: what may run side by side."""
    lanes: dict[str, list[DemoRun]] = {}
    for r in runs:
        lanes.setdefault(r.experiment, []).append(r)
    return list(lanes.values())


def summary(out: Path) -> str:
    """The closing table: one row per experiment × method × benchmark, with a plain-words verdict."""
    from ftstudy.study import comparison

    lines = []
    results = out / "results"
    for exp in sorted(p.name for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for tag, rows in comparison.compare_tags(exp, results).items():
            for row in (r for r in rows if r["status"] == "ok"):
                sig = ("significant: the 95% CI excludes 0" if row.get("significant")
                       else "NOT significant: the 95% CI includes 0")
                ci = f"[{row.get('ci_low', 0):+.3f}, {row.get('ci_high', 0):+.3f}]"
                lines.append(f"{exp:15} {tag:5} {row['benchmark']:14} base {row['base']:.3f} -> ft {row['ft']:.3f}  "
                             f"delta {row['delta']:+.3f} CI {ci}  {sig}")
    return "\n".join(lines) or "no comparisons (did the bench stages run?)"
