"""Tool side of gpu_axolotl_check.py (runs under the train environment's Python): save a randomly initialised
model of a config.json's shape, with a tokenizer copied from another folder, as a base model Axolotl can load.

Usage: python random_model.py CONFIG_JSON TOKENIZER_DIR OUT_DIR
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

config_json, tok_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
raw = {k: v for k, v in json.loads(Path(config_json).read_text()).items()
       if k not in ("architectures", "torch_dtype", "transformers_version") and not k.startswith("_")}
cfg = AutoConfig.for_model(**raw)
torch.manual_seed(0)
cuda = torch.cuda.is_available()
with torch.device("cuda" if cuda else "cpu"):
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if cuda else torch.float32)
model.save_pretrained(out)
for f in tok_dir.iterdir():
    if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")) or f.name == "chat_template.jinja":
        shutil.copy(f, out / f.name)
print(json.dumps({"model": str(out), "params": sum(p.numel() for p in model.parameters())}))
