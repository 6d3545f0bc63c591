"""Run Axolotl's own config validation on one YAML file (tool side: runs in the train environment).

Prints one JSON line per file: {"path": ..., "ok": bool, "errors": [{"loc": "...", "msg": "..."}]}.
Usage: python axolotl_validate.py CONFIG.yaml...  (one process for many files: Axolotl takes seconds to import)
"""
import json
import re
import sys

import yaml

# What Axolotl would probe on each profile's machine (the config header names the profile): H100 is sm_90,
# the DGX Spark's GB10 sm_121; both do bf16. Other files (no header) are checked as on a CPU host.
CAPS = {
    "h100": {"bf16": True, "fp8": True, "n_gpu": 1, "n_node": 1, "compute_capability": "sm_90"},
    "h100x8": {"bf16": True, "fp8": True, "n_gpu": 8, "n_node": 1, "compute_capability": "sm_90"},
    "dgx-spark": {"bf16": True, "fp8": True, "n_gpu": 1, "n_node": 1, "compute_capability": "sm_121"},
}
CPU = {"bf16": False, "fp8": False, "n_gpu": 1, "n_node": 1, "compute_capability": None}


def capabilities(text: str) -> dict:
    found = re.search(r"^# experiment: \S+\s+method: \S+\s+hardware: (\S+)", text, re.M)
    return dict(CAPS.get(found.group(1), CPU) if found else CPU)


def check(path: str) -> dict:
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    text = open(path).read()
    cfg = DictDefault(yaml.safe_load(text))
    # Capabilities are what Axolotl normally probes from the GPU; on a CPU host we state them (per the
    # profile the config was generated for) so that validation checks the config rather than this machine.
    caps = capabilities(text)
    env_caps = {"torch_version": __import__("torch").__version__}
    errors = []
    try:
        validate_config(cfg, capabilities=caps, env_capabilities=env_caps)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append({"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": err.get("msg", "")})
    except Exception as exc:  # Axolotl raises plain ValueErrors from its model validators too
        errors.append({"loc": "", "msg": f"{type(exc).__name__}: {exc}"})
    return {"path": path, "ok": not errors, "errors": errors}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(check(arg)), flush=True)
