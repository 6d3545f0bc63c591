"""Check a merged model against base + adapter (tool side: runs in the train environment).

Usage: python merge_check.py BASE ADAPTER MERGED
Prints one JSON line: max |logit difference| merged vs base+adapter, and merged vs base, on fixed prompts.
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

# Fixed prompts: short, varied, and the same for every check so results compare across runs.
PROMPTS = [
    "Classify the topic of this news article: the central bank raised interest rates again.",
    "Write a Python function that returns the sum of a list.",
    "<|im_start|>user\nWhat is 12 times 7?<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog.",
]


def logits(model, tok):
    out = []
    with torch.no_grad():
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt")
            out.append(model(**ids).logits.float())
    return out


def max_diff(a, b):
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def main(base_path, adapter_path, merged_path):
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(merged_path)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).eval()
    base_logits = logits(base, tok)
    with_adapter = PeftModel.from_pretrained(base, adapter_path).eval()
    adapter_logits = logits(with_adapter, tok)
    del with_adapter, base
    merged = AutoModelForCausalLM.from_pretrained(merged_path, dtype=torch.float32).eval()
    merged_logits = logits(merged, tok)
    scale = max(float(x.abs().max()) for x in adapter_logits)
    print(json.dumps({
        "prompts": len(PROMPTS),
        "max_abs_diff_merged_vs_adapter": max_diff(merged_logits, adapter_logits),
        "max_abs_diff_merged_vs_base": max_diff(merged_logits, base_logits),
        "max_abs_diff_adapter_vs_base": max_diff(adapter_logits, base_logits),
        "logit_scale": scale,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:4])
