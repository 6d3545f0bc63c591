"""BFCL through `bfcl-eval` in its own environment (it pins numpy 1.26), against a vLLM server of the MERGED
model (BFCL's requests name the base model path, so an adapter would not be applied: merge first).

Qwen2.5's registry entries left BFCL in 2025; `Qwen/Qwen3-8B-FC` uses the same <tools>/<tool_call> format, so it
is the handler used, with --local-model-path pointing at our weights (the deviation is recorded in the result).
"""
from __future__ import annotations

import json
from pathlib import Path

from ftstudy.core import tool_envs as envs
from ftstudy.core import runner
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable

HANDLER = "Qwen/Qwen3-8B-FC"
PORT = 1053  # bfcl's default LOCAL_SERVER_PORT


def generate_argv(bfcl: str | Path, model_path: str, categories: str) -> list[str]:
    return [str(bfcl), "generate", "--model", HANDLER, "--test-category", categories, "--backend", "vllm",
            "--local-model-path", model_path, "--skip-server-setup"]


def evaluate_argv(bfcl: str | Path, categories: str) -> list[str]:
    return [str(bfcl), "evaluate", "--model", HANDLER, "--test-category", categories]


def serve_argv(vllm: str | Path, model_path: str) -> list[str]:
    """vLLM serving the merged weights under their path, as BFCL names the model in its requests."""
    return [str(vllm), "serve", model_path, "--host", "127.0.0.1", "--port", str(PORT), "--max-model-len", "8192"]


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    if ctx.adapter:
        raise HarnessUnavailable("BFCL needs merged weights: run `ftstudy merge RUN` and bench RUN/merged")
    if ctx.device != "cuda" and not ctx.dry_run:
        raise HarnessUnavailable("BFCL runs against vLLM, which needs a GPU host")
    try:
        bfcl = "<bfcl-env>/bin/bfcl" if ctx.dry_run else envs.bin_path("bfcl", "bfcl")
    except envs.EnvMissing as exc:
        raise HarnessUnavailable(str(exc)) from None
    work = ctx.work_dir("bfcl")
    env = {"BFCL_PROJECT_ROOT": str(work), "LOCAL_SERVER_ENDPOINT": "127.0.0.1", "LOCAL_SERVER_PORT": str(PORT)}
    gen, ev = generate_argv(bfcl, ctx.model, bench["task"]), evaluate_argv(bfcl, bench["task"])
    ctx.commands += [gen, ev]
    if ctx.dry_run:
        return HarnessOutput({}, [], settings={"command": runner.show(gen, env) + "\n" + runner.show(ev, env)})
    from ftstudy.eval import serve

    work.mkdir(parents=True, exist_ok=True)
    with serve.Server(ctx.model, engine="vllm", port=PORT):
        runner.check(runner.run(gen, env=env, log=work / "bfcl.log", quiet=True), "bfcl generate", work / "bfcl.log")
    runner.check(runner.run(ev, env=env, log=work / "bfcl.log", quiet=True), "bfcl evaluate", work / "bfcl.log")
    return parse_scores(work / "score", bench)


def parse_scores(score_dir: Path, bench: dict) -> HarnessOutput:
    """Each BFCL_v4_<category>_score.json opens with a header line {accuracy, correct_count, total_count}."""
    per_cat, correct, total = {}, 0, 0
    for f in sorted(score_dir.rglob("BFCL_v4_*_score.json")):
        head = json.loads(f.read_text().splitlines()[0])
        cat = f.name[len("BFCL_v4_"):-len("_score.json")]
        per_cat[f"{cat}.accuracy"] = head["accuracy"]
        correct += head["correct_count"]
        total += head["total_count"]
    if not total:
        raise HarnessUnavailable(f"BFCL wrote no scores under {score_dir}")
    metrics = {**per_cat, "accuracy": correct / total}
    return HarnessOutput(metrics, [], settings={"handler": HANDLER, "note": "Qwen3 FC handler for Qwen2.5 weights"})
