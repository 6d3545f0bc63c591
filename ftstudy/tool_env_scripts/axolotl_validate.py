"""Axolotl's own config validation, as a warm process (tool side: runs in the train environment).

Reads one JSON request a line on stdin: {"id": ..., "text": YAML, "capabilities": {...} | null,
"env_capabilities": {...} | null}, and answers each with one line on stdout:
{"id": ..., "ok": bool, "errors": [{"loc": "...", "msg": "..."}]}. The first line is
{"ready": "<axolotl version>"} once Axolotl is imported (seconds: why one process serves many files).

Each config goes through what `axolotl train` does before training: load the YAML, register the plugins it
lists (their keys join the model: prepare_plugins), validate_config with the capabilities of the machine the
config is for (null: this machine, probed as `axolotl train` probes it). The plugin manager is a process-wide
singleton, so it is emptied between configs: one config's plugins must not make the next one's keys valid.
"""
import json
import logging
import sys

import yaml


def loc_of(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check(req: dict) -> dict:
    from axolotl.cli.config import gpu_capabilities, prepare_plugins
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    manager = PluginManager.get_instance()
    manager.plugins.clear()
    errors = []
    cfg = None
    try:
        loaded = yaml.safe_load(req["text"])
        if not isinstance(loaded, dict):
            raise ValueError(f"the config must be a mapping, got {type(loaded).__name__}")
        cfg = DictDefault(loaded)
        prepare_plugins(cfg)
        caps, env_caps = req.get("capabilities"), req.get("env_capabilities")
        if caps is None:
            caps, env_caps = gpu_capabilities()
        validate_config(cfg, capabilities=caps, env_capabilities=env_caps)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append({"loc": loc_of(err.get("loc", ())), "msg": err.get("msg", "")})
    except Exception as exc:  # Axolotl raises plain ValueErrors from its model validators too
        errors.append({"loc": "", "msg": f"{type(exc).__name__}: {exc}"})
    if errors and manager.plugins and cfg is not None:
        try:  # undo register()-time side effects, as `axolotl train` does, before the next config
            manager.on_config_validation_error(cfg)
        except Exception:
            pass
    return {"id": req["id"], "ok": not errors, "errors": errors}


def main() -> None:
    logging.disable(logging.WARNING)  # Axolotl's own log lines would crowd out the answers
    import axolotl
    import axolotl.utils.config  # noqa: F401  (the slow import, before "ready")

    out = sys.stdout
    sys.stdout = sys.stderr  # whatever Axolotl prints goes to stderr, never between two answers
    print(json.dumps({"ready": axolotl.__version__}), file=out, flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(check(json.loads(line))), file=out, flush=True)


if __name__ == "__main__":
    main()
