"""GPU check through Axolotl itself: ftstudy's generated config (speed choices and memory fill of
ftstudy/config/tuning.py) trains a randomly initialised Qwen2.5-7B-shaped model (built from its config.json, no
download) for LoRA, QLoRA and full fine-tuning; after the warm-up steps it prints tokens/s, MFU and peak
memory beside the planner's prediction, and the plain transformers + peft loop of gpu_lora_check.py measured
in the same run as the baseline (the ratio Axolotl / baseline is the figure to read).

On a GPU machine (no network: Axolotl and what the machine lacks come as wheels, see gpu_wheels.py):
    python tests/benchmarks/gpu_axolotl_check.py --python python3 --hardware h100 [--record]
CPU smoke test (`make bench` runs it: a tiny model, a few steps, the whole pipeline):
    .venv/bin/python tests/benchmarks/gpu_axolotl_check.py --device cpu --tiny
Variants measure one choice against the generated config, e.g. `--variant torch_compile=false`.
One device call (10 minutes) fits one method on the 7B model: give --methods lora (then qlora, then full), with
`.whl` carried and the install line of gpu_wheels.py first; where flash-attn is absent SDPA varlen replaces it.
--record adds the measured entries to ftstudy/config/calibration.json (`measured`), which `ftstudy plan` then uses.
Targets (printed, not asserted): MFU >= 40% LoRA, 25% QLoRA, 35% full on one H100-class GPU; planner within
10% of peak memory and 15% of tokens/s.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
TARGET_MFU = {"lora": 0.40, "qlora": 0.25, "full": 0.35}
EXPERIMENT = {"lora": "code", "qlora": "classification", "full": "code"}
# --ablate: each speed choice of tuning.py switched off in turn, to measure what it brings on this GPU
ABLATIONS = {
    "no-compile": {"torch_compile": False},
    "no-liger": {"liger_rope": False, "liger_rms_norm": False, "liger_glu_activation": False,
                 "liger_fused_linear_cross_entropy": False},
    "no-packing": {"sample_packing": False, "pad_to_sequence_len": False},
    "checkpointing": {"gradient_checkpointing": True},
}


def rows_jsonl(path: Path, n: int, words: list[str]) -> Path:
    """Synthetic instruction rows (problem/solution, the code experiment's shape) of varied length."""
    import random

    rnd = random.Random(0)
    with path.open("w") as fh:
        for i in range(n):
            k = rnd.randint(40, 400)
            fh.write(json.dumps({"problem": " ".join(rnd.choices(words, k=k // 4)),
                                 "solution": " ".join(rnd.choices(words, k=k))}) + "\n")
    return path


def generated(method: str, hw: str, model: str, data: Path, seq: int, sets: dict, out: Path) -> dict:
    """The config `ftstudy gen` writes for this method on this profile, with the bench's data, model and
    sequence length; the memory fill is redone for that length (as gen does for an experiment's own)."""
    from ftstudy.config import gen
    from ftstudy.config import tuning

    entry = gen.build("code", "lora", hw)["datasets"][0]
    cfg = gen.build(EXPERIMENT[method], method, hw, base_model=model,
                    overrides={"datasets": [{**entry, "path": str(data)}], "sequence_len": seq})
    if tuning.choices(hw, method):
        for key in ("gradient_checkpointing_kwargs", "selective_checkpointing"):
            cfg.pop(key, None)
        picked = tuning.fill(cfg, hw)
        picked.pop("why")
        cfg.update(picked)
    cfg.update({"output_dir": str(out / f"run-{method}"), "dataset_prepared_path": str(out / f"prep-{method}"),
                "save_strategy": "no", "saves_per_epoch": None, "warmup_ratio": None, "warmup_steps": 1,
                "num_epochs": 1, "val_set_size": 0.0})
    cfg.update(sets)
    return {k: v for k, v in cfg.items() if v is not None}


def train(python: str, cfg_path: Path, hw: str, out: Path) -> dict:
    """Run Axolotl on one config; the time each step's log line arrives and its tokens/total give tokens/s
    after the warm-up, Axolotl's memory/max_allocated the GPU peak (measure.py's RSS on the CPU)."""
    from ftstudy.core import runner
    from ftstudy.train import train as ft_train

    marks: list[tuple[float, int, float | None]] = []

    def on_line(line: str) -> None:
        text = line.strip()
        if text.startswith("{") and "tokens/total" in text:
            try:
                logs = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return
            alloc = logs.get("memory/max_allocated (GiB)")
            marks.append((time.monotonic(), int(float(logs["tokens/total"])), float(alloc) if alloc else None))

    env = ft_train.tool_env(hw)
    if hw != "cpu":
        env.pop("CUDA_VISIBLE_DEVICES", None)
    measure = out / f"measure-{cfg_path.stem}.json"
    argv = [python, str(ROOT / "ftstudy" / "tool_env_scripts" / "measure.py"), str(measure), "--",
            python, "-m", "axolotl.cli.train", str(cfg_path)]
    res = runner.run(argv, env=env, log=out / f"{cfg_path.stem}.log", on_line=on_line, quiet=True)
    m = json.loads(measure.read_text()) if measure.is_file() else {}
    return {"returncode": res.returncode, "marks": marks, "tail": res.tail[-8:], **m}


def figures(run: dict, warmup: int) -> dict:
    marks = run["marks"]
    if run["returncode"] != 0 or len(marks) < warmup + 2:
        return {"error": f"Axolotl exited {run['returncode']} after {len(marks)} logged steps: "
                         + " | ".join(run["tail"][-3:])}
    (t0, n0, _), (t1, n1, _) = marks[warmup], marks[-1]
    allocs = [a for _, _, a in marks if a]
    peak = max(allocs) * 2**30 / 1e9 if allocs else (run.get("peak_gpu_gb") or run.get("peak_rss_gb"))
    return {"tokens_per_second": round((n1 - n0) / (t1 - t0), 1), "steps_timed": len(marks) - 1 - warmup,
            "peak_memory_gb": round(peak, 3) if peak else None,
            "peak_kind": "torch max_allocated" if allocs else "process RSS / nvidia-smi"}


def baseline(python: str, method: str, seq: int, mbs: int, steps: int, warmup: int, device: str,
             model: str | None) -> dict:
    argv = [python, str(HERE / "gpu_lora_check.py"), "--methods", method, "--seq", str(seq), "--mbs", str(mbs),
            "--steps", str(steps), "--warmup", str(warmup), "--device", device, "--no-planner"]
    if model:
        argv += ["--model", model]
    out = subprocess.run(argv, capture_output=True, text=True, env={"PYTHONUNBUFFERED": "1", **_env()})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": (out.stderr or out.stdout).strip()[-300:]}


def _env() -> dict:
    import os

    return dict(os.environ)


def versions(python: str) -> dict:
    code = ("import json, importlib.metadata as m\nout = {}\nfor n in ('axolotl','torch','transformers','peft',"
            "'liger-kernel','bitsandbytes','flash-attn'):\n    try: out[n] = m.version(n)\n    except Exception: pass\n"
            "import torch\nout['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'\n"
            "print(json.dumps(out))")
    res = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else {"gpu": "unknown"}


def main(argv: list[str] | None = None) -> int:
    from ftstudy.core import tool_envs as envs
    from ftstudy.config import gen
    from ftstudy.plan import estimate as planner
    from ftstudy.plan import check as planner_check
    from ftstudy.config import profiles
    from ftstudy.train import tiny

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true", help="the tiny test model instead of a random Qwen2.5-7B")
    ap.add_argument("--hardware", help="profile whose generated config runs (default: h100, cpu with --device cpu)")
    ap.add_argument("--methods", default="lora,qlora,full")
    ap.add_argument("--seq", type=int, help="sequence length (default 4096; 256 with --tiny)")
    ap.add_argument("--steps", type=int, help="timed steps after warm-up (default 30; 4 with --tiny)")
    ap.add_argument("--warmup", type=int, help="warm-up steps, not timed (default 5; 2 with --tiny)")
    ap.add_argument("--python", help="Python with Axolotl (default: the train environment's)")
    ap.add_argument("--variant", action="append", default=[],
                    help="KEY=VALUE[,KEY=VALUE]: also run the config with this change")
    ap.add_argument("--ablate", action="store_true", help="also run each speed choice switched off (ABLATIONS)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--record", nargs="?", const="", help="add the measurements to calibration.json (or PATH)")
    ap.add_argument("--out", help="work folder (default: a temporary one)")
    a = ap.parse_args(argv)
    hw = a.hardware or ("cpu" if a.device == "cpu" else "h100")
    seq = a.seq or (256 if a.tiny else 4096)
    steps, warmup = a.steps or (4 if a.tiny else 30), a.warmup if a.warmup is not None else (2 if a.tiny else 5)
    python = a.python or str(envs.bin_path("train"))
    out = Path(a.out or tempfile.mkdtemp(prefix="ftstudy-axolotl-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    tok = tiny.build(out / "tiny-model", seed=0)
    if a.tiny:
        model = str(tok)
    else:
        model = str(out / "qwen2.5-7b-random")
        if not (Path(model) / "config.json").is_file():
            subprocess.run([python, str(HERE / "random_model.py"), str(ROOT / "ftstudy" / "config" / "model_configs" /
                            "Qwen__Qwen2.5-7B.json"), str(tok), model], check=True)
    words = (ROOT / "ftstudy" / "tool_env_scripts" / "tiny_corpus.txt").read_text().split()
    data = rows_jsonl(out / "rows.jsonl", 400 if a.tiny else 20000, words)
    ver = versions(python)
    prof = profiles.profile(hw)
    peak = prof["gpus"] * prof["peak_tflops"] * 1e12
    print(f"Axolotl {ver.get('axolotl')} on {ver.get('gpu')}, profile {hw} (peak {prof['peak_tflops']} TFLOP/s), "
          f"seq {seq}, {warmup} warm-up + {steps} timed steps; model {'tiny' if a.tiny else 'random Qwen2.5-7B'}\n")
    base_sets: dict = {}
    if a.device == "cuda" and "flash-attn" not in ver:  # no flash-attn wheel travels: what the Spark profile uses
        base_sets = {"attn_implementation": "sdpa", "sdpa_varlen": True}
        print("flash-attn is not installed: the generated flash_attention_2 is replaced by SDPA varlen\n")
    runs = [(m, {}) for m in a.methods.split(",")]
    variants = [gen.parse_set(tuple(v.split(","))) for v in a.variant]
    variants += list(ABLATIONS.values()) if a.ablate else []
    runs += [(m, v) for v in variants for m in a.methods.split(",")]
    entries, ok = [], True
    for method, sets in runs:
        sets = {**sets, "max_steps": warmup + steps + 1}
        cfg = generated(method, hw, model, data, seq, {**base_sets, **sets}, out)
        name = method + "".join(f"-{k}={v}" for k, v in sets.items() if k != "max_steps")
        path = out / f"{name.replace('/', '_')}.yaml"
        path.write_text(gen.render(cfg, EXPERIMENT[method], method, hw, "tests/benchmarks/gpu_axolotl_check.py", str(path)))
        pred = planner.estimate(cfg, hw, None, method)
        got = figures(train(python, path, hw, out), warmup)
        row = {"run": name, "micro_batch": cfg["micro_batch_size"], "checkpointing": cfg.get("gradient_checkpointing"),
               "torch_compile": cfg.get("torch_compile"), **got,
               "predicted_tokens_per_second": pred["throughput"]["tokens_per_second"],
               "predicted_peak_gb": pred["memory_gb"]["total"]}
        if "tokens_per_second" in got:
            row["mfu"] = round(got["tokens_per_second"] * pred["flops_per_token"] / peak, 4)
            row["tps_error_pct"] = round(100 * (row["predicted_tokens_per_second"] / got["tokens_per_second"] - 1), 1)
            if got.get("peak_memory_gb"):
                row["memory_error_pct"] = round(100 * (row["predicted_peak_gb"] / got["peak_memory_gb"] - 1), 1)
            if not sets.keys() - {"max_steps"} and a.device == "cuda":
                entries.append({"gpu": ver.get("gpu"), "profile": hw, "method": method, "flops_per_token": pred["flops_per_token"],
                                "tokens_per_second": got["tokens_per_second"], "mfu": row["mfu"],
                                "peak_memory_gb": got.get("peak_memory_gb"), "date": datetime.date.today().isoformat(),
                                "versions": {k: v for k, v in ver.items() if k != "gpu"},
                                "settings": {"sequence_len": seq, "micro_batch_size": cfg["micro_batch_size"],
                                             "attn_implementation": cfg.get("attn_implementation"),
                                             "gradient_checkpointing": cfg.get("gradient_checkpointing")},
                                "source": "tests/benchmarks/gpu_axolotl_check.py"})
        else:
            ok = False
        if not a.no_baseline and not (sets.keys() - {"max_steps"}):
            base = baseline(python, method, seq, cfg["micro_batch_size"], steps, warmup, a.device,
                            model if a.tiny else None)
            row["baseline"] = base
            if base.get("tokens_per_second") and got.get("tokens_per_second"):
                row["baseline_mfu"] = round(base["tokens_per_second"] * pred["flops_per_token"] / peak, 4)
                row["axolotl_over_baseline"] = round(got["tokens_per_second"] / base["tokens_per_second"], 2)
        print(json.dumps(row), flush=True)
        target = TARGET_MFU.get(method)
        if "mfu" in row and a.device == "cuda" and target and not (sets.keys() - {"max_steps"}):
            print(f"  {method}: MFU {row['mfu']:.1%} (target {target:.0%}: {'met' if row['mfu'] >= target else 'NOT met'}); "
                  f"planner tokens/s {row['tps_error_pct']:+.1f}% (target ±15%), "
                  f"memory {row.get('memory_error_pct', float('nan')):+.1f}% (target ±10%)")
    if a.record is not None and entries:
        print("recorded in", planner_check.record_measured(entries, a.record or None))
    return 0 if ok else 1


if __name__ == "__main__":
    from ftstudy.core.errors import UserError

    try:
        sys.exit(main())
    except (UserError, subprocess.CalledProcessError) as exc:  # one line, no traceback
        sys.exit(f"gpu_axolotl_check: {str(exc).splitlines()[0]}")
