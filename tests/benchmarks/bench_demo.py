"""Benchmark of the demo (issue: the main job on the embedded default).

Runs `ftstudy demo` (full, or --quick) in a fresh folder, and in the same run a baseline: one bare Axolotl
training launch (`accelerate launch -m axolotl.cli.train`) of the demo's classification LoRA config for 1 step,
i.e. the irreducible cost of starting the trainer once. Prints the demo's wall time, its ratio to the 5-minute
target (2 minutes for --quick) and to the baseline, where the time went (each stage of each demo run, from the
study's state files, as seconds and as multiples of the baseline), the core count and the load average (a
loaded machine inflates every figure; the ratios much less), and the demo's summary table.

Usage: python tests/benchmarks/bench_demo.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def baseline(tiny: Path, work: Path) -> float:
    """Seconds for one bare Axolotl launch of 1 step on the demo data (same machine, same run)."""
    from ftstudy.core import tool_envs as envs
    from ftstudy.config import gen
    from ftstudy.train import train
    from ftstudy.study.demo import DATA

    cfg = gen.build("classification", "lora", "cpu", str(tiny), overrides={"max_steps": 1, "save_steps": 1,
                                                                          "saves_per_epoch": None, "output_dir": str(work / "bl")})
    cfg["datasets"][0].update(path=str(DATA / "bench" / "ag_news_mc.jsonl"), type={
        "field_instruction": "text", "field_output": "text", "format": "{instruction}", "no_input_format": "{instruction}"})
    # (the output is the text again: `label` is an int, which the tokenizer refuses; 1 step, start-up is the point)
    path = work / "baseline.yaml"
    path.write_text(json.dumps(cfg))
    argv = train.launch_argv(envs.bin_path("train", "accelerate"), path, 1, cpu=True)
    from ftstudy.train.tiny import THREAD_ENV

    t0 = time.time()
    subprocess.run(argv, env={**os.environ, **train.tool_env("cpu"), **THREAD_ENV}, cwd=work, check=True,
                   capture_output=True)
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="ftstudy-demo-bench-"))
    cmd = [sys.executable, "-m", "ftstudy", "demo", "--out", str(out)] + (["--quick"] if args.quick else [])
    t0 = time.time()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    print(res.stdout)
    if res.returncode != 0:
        print(res.stderr[-3000:])
        sys.exit(1)
    base = baseline(out / "tiny-model", out)
    target = 120 if args.quick else 300
    print(f"cores: {os.cpu_count()}  load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'stage':40} {'seconds':>8} {'x launch':>9}")
    for path in sorted((out / "state").glob("*/*.json")):
        state = json.loads(path.read_text())
        for stage, rec in state.items():
            if isinstance(rec, dict) and rec.get("seconds") is not None:
                name = f"{path.parent.name}/{path.stem} {stage}"
                print(f"{name:40} {rec['seconds']:8.1f} {rec['seconds'] / base:9.2f}")
    print(f"demo{' --quick' if args.quick else ''}: {wall:.0f} s = {wall / target:.2f} x the {target // 60}-minute target"
          f" = {wall / base:.1f} x one bare Axolotl launch ({base:.0f} s, measured in this run)")


if __name__ == "__main__":
    main()
