"""Run Axolotl's own config validation on one YAML file (tool side: runs in the train environment).

Prints one JSON line per file: {"path": ..., "ok": bool, "errors": [{"loc": "...", "msg": "..."}]}.
Usage: python axolotl_validate.py CONFIG.yaml...  (one process for many files: Axolotl takes seconds to import)
"""
import json
import sys

import yaml


def check(path: str) -> dict:
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    cfg = DictDefault(yaml.safe_load(open(path)))
    # Capabilities are what Axolotl normally probes from the GPU; on a CPU host we state them so that
    # validation checks the config rather than the machine.
    caps = {"bf16": False, "fp8": False, "n_gpu": 1, "n_node": 1, "compute_capability": None}
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
