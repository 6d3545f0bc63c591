"""Write a LoRA adapter at its initial state (A from one seeded generator, B zero) for Axolotl's `lora_model_dir`.

Why: Axolotl creates the adapter before the trainer seeds anything, and two runs of the same config were seen
to start from different adapters (the demo's classification LoRA scored 0.933 in one clone, 0.700 in another,
while full fine-tuning agreed to the last bit). Starting every run from this file makes the start the same.
Runs in the train environment (torch, peft); ftstudy.study.demo calls it.

Example:
    $ python init_lora.py --model demo-study/tiny-model --out demo-study/lora-init --r 16 --alpha 32 --seed 42
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--r", type=int, required=True)
    ap.add_argument("--alpha", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    args = ap.parse_args(argv)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    torch.manual_seed(args.seed)
    # "all-linear": every linear layer but the output head, as Axolotl's lora_target_linear chooses them.
    cfg = LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.0, target_modules="all-linear", bias="none",
                     task_type="CAUSAL_LM")
    get_peft_model(model, cfg).save_pretrained(args.out)


if __name__ == "__main__":
    main()
