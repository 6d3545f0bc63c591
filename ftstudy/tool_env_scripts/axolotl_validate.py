"""Run Axolotl's own config validation on YAML files (tool side: runs in the train environment).

Prints one JSON line per file: {"path": ..., "ok": bool, "errors": [{"loc": "...", "msg": "..."}]}.
Usage: python axolotl_validate.py CONFIG.yaml...  (one process for many files: Axolotl takes seconds to import)

Each file goes through what `axolotl train` does before training: load the YAML, register the plugins it lists
(their keys join the model), validate. The plugin manager is a process-wide singleton, so it is emptied between
files: one file's plugins must not make the next file's keys valid.
"""
import json
import logging
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
    from axolotl.cli.config import prepare_plugins
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    manager = PluginManager.get_instance()
    manager.plugins.clear()
    errors = []
    cfg = None
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        cfg = DictDefault(yaml.safe_load(text))
        prepare_plugins(cfg)
        # Capabilities are what Axolotl normally probes from the GPU; on a CPU host we state them (per the
        # profile the config was generated for) so that validation checks the config rather than this machine.
        validate_config(cfg, capabilities=capabilities(text),
                        env_capabilities={"torch_version": __import__("torch").__version__})
    except ValidationError as exc:
        for err in exc.errors():
            errors.append({"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": err.get("msg", "")})
    except Exception as exc:  # Axolotl raises plain ValueErrors from its model validators too
        errors.append({"loc": "", "msg": f"{type(exc).__name__}: {exc}"})
    if errors and manager.plugins and cfg is not None:
        try:  # undo register()-time side effects, as `axolotl train` does, before the next file
            manager.on_config_validation_error(cfg)
        except Exception:
            pass
    return {"path": path, "ok": not errors, "errors": errors}


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # Axolotl's own log lines would crowd out the JSON lines in the tail
    for arg in sys.argv[1:]:
        print(json.dumps(check(arg)), flush=True)
