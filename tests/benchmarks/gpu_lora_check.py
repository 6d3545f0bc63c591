"""GPU check (issues: training, planner): a few LoRA and QLoRA training steps of a randomly initialised model of
Qwen2.5-7B's shape (built from its config; no download) on the card at hand, with measured peak memory and
tokens/s (MFU) printed beside `ftstudy plan`'s prediction for the same settings.

Run on a CUDA host:  python tests/benchmarks/gpu_lora_check.py [--methods lora,qlora,full] [--seq 2048] [--mbs 4]
On the CPU (smoke test, as gpu_axolotl_check.py's baseline):  ... --device cpu --model TINY_MODEL_DIR

What it is not: an Axolotl run. The device machines lent to this project have no network to install Axolotl, so
this loop reproduces the generated config's settings with transformers + peft (+ bitsandbytes for QLoRA):
bf16 weights, LoRA r=16 alpha=32 on every linear layer, gradient checkpointing, AdamW, SDPA attention (flash-attn
is not installed there) and no Liger kernels; the planner is asked about exactly these settings.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def predicted(method: str, seq: int, mbs: int) -> dict:
    from ftstudy.plan import estimate as planner

    overrides = {"sequence_len": seq, "micro_batch_size": mbs, "attn_implementation": "sdpa", "plugins": None,
                 "liger_rope": None, "liger_rms_norm": None, "liger_glu_activation": None,
                 "liger_fused_linear_cross_entropy": None, "optimizer": "adamw_torch_fused" if method == "lora" else "paged_adamw_8bit",
                 "sample_packing": True, "lora_r": 16, "lora_alpha": 32, "gradient_checkpointing": True, "torch_compile": None,
                 "sdpa_varlen": None}
    if method == "full":
        overrides.update(optimizer="paged_adamw_8bit", lora_r=None, lora_alpha=None)
    exp = "classification"  # has lora and qlora; the model and settings are what matter here
    p = planner.plan(exp, method, "h100", overrides=overrides)
    return {"peak_memory_gb": p["memory_gb"]["total"], "parts": p["memory_gb"], "flops_per_token": p["flops_per_token"],
            "tokens_per_second_predicted": p["throughput"]["tokens_per_second"]}


def build(method: str, device: str = "cuda", model_dir: str | None = None):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    if model_dir:
        cfg = AutoConfig.from_pretrained(model_dir)
    else:
        cfg = AutoConfig.for_model(**{k: v for k, v in json.loads(
            (ROOT / "ftstudy" / "config" / "model_configs" / "Qwen__Qwen2.5-7B.json").read_text()).items()
            if k not in ("model_type", "architectures", "torch_dtype") and not k.startswith("_")},
            model_type="qwen2")
    cfg.use_cache = False
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if method == "full":
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation="sdpa")
        model.gradient_checkpointing_enable()
        return model, cfg
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        # random bf16 weights, then quantised to NF4 on the GPU the way `load_in_4bit` does for a checkpoint
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
        tmp = Path("/tmp/qwen7b-random")
        model.save_pretrained(tmp)
        del model
        torch.cuda.empty_cache()
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=q, dtype=torch.bfloat16,
                                                     attn_implementation="sdpa", device_map={"": 0})
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation="sdpa")
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    return get_peft_model(model, lora), cfg


def measure(method: str, seq: int, mbs: int, steps: int, warmup: int, device: str = "cuda",
            model_dir: str | None = None) -> dict:
    import resource

    import torch

    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    elif method == "qlora":
        raise RuntimeError("the QLoRA baseline needs CUDA (bitsandbytes 4-bit)")
    model, cfg = build(method, device, model_dir)
    params = [p for p in model.parameters() if p.requires_grad]
    if cuda and method in ("qlora", "full"):
        import bitsandbytes as bnb

        opt = bnb.optim.PagedAdamW8bit(params, lr=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=1e-4, fused=cuda)
    model.train()
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for step in range(warmup + steps):
        ids = torch.randint(0, cfg.vocab_size, (mbs, seq), device=device, generator=gen)
        sync()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    tps = mbs * seq * len(times) / sum(times)
    out = {"method": method, "seq": seq, "micro_batch": mbs, "steps_timed": len(times), "loss": float(loss),
           "tokens_per_second": round(tps, 1)}
    if cuda:
        out.update(peak_allocated_gb=round(torch.cuda.max_memory_allocated() / 1e9, 3),
                   peak_reserved_gb=round(torch.cuda.max_memory_reserved() / 1e9, 3), card=torch.cuda.get_device_name(0))
    else:
        out.update(peak_allocated_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3),
                   card="cpu")
    del model, opt
    if cuda:
        torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="lora,qlora")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--mbs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--model", help="a model folder (config.json) instead of Qwen2.5-7B's bundled config")
    ap.add_argument("--no-planner", action="store_true", help="measure only (the caller asks the planner itself)")
    args = ap.parse_args()
    rows = []
    for method in args.methods.split(","):
        try:
            m = measure(method, args.seq, args.mbs, args.steps, args.warmup, args.device, args.model)
        except Exception as exc:  # report what failed and go on with the other method
            m = {"method": method, "error": f"{type(exc).__name__}: {exc}"[:500]}
        if args.no_planner:
            print(json.dumps(m), flush=True)
            continue
        p = predicted(method, args.seq, args.mbs)
        if "tokens_per_second" in m:
            m["mfu"] = round(m["tokens_per_second"] * p["flops_per_token"] / 989e12, 4)
            m["memory_error_pct"] = round((p["peak_memory_gb"] - m["peak_allocated_gb"]) / m["peak_allocated_gb"] * 100, 1)
        rows.append({**m, "planner": p})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
