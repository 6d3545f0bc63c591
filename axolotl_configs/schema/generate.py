"""Regenerate the JSON Schema of Axolotl's config from Axolotl's own pydantic model.

Run it with the train environment's Python (the one that has the pinned Axolotl):

    $(ftstudy doctor --json | jq -r .envs.train.path)/bin/python axolotl_configs/schema/generate.py
    # or: make schema

A version bump is: change the pin in ftstudy/core/tool_env_pins/train-*.txt, `ftstudy setup train`, `make schema`.

Two things differ from pydantic's default generator:
- Axolotl 0.19.0's model has enums whose values are `torch.dtype` objects, which the default generator cannot
  serialize; they are written as their names.
- Axolotl drops unknown keys without a word. Here every object that lists its properties gets
  `additionalProperties: false` (dataset entries included), and aliases are listed beside field names, so
  ftstudy's validator can reject a typo and suggest the key that was meant.
"""
from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value).removeprefix("torch.")


class AxolotlSchema(GenerateJsonSchema):
    def enum_schema(self, schema):
        members = [_plain(m) for m in schema["members"]]
        out: dict[str, Any] = {"enum": members}
        title = schema["cls"].__name__
        out["title"] = title
        return out

    def encode_default(self, dft):
        try:
            return super().encode_default(dft)
        except Exception:
            return _plain(dft)

    def is_instance_schema(self, schema):
        return {}  # an arbitrary Python object (torch.dtype, ...): accept anything

    def callable_schema(self, schema):
        return {}


def close_objects(node: Any) -> None:
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            close_objects(value)
    elif isinstance(node, list):
        for value in node:
            close_objects(value)


def add_field_names(model: Any, schema: dict) -> None:
    """Axolotl sets populate_by_name: a field is accepted by its name as well as by its alias."""
    from pydantic import BaseModel

    seen = set()

    def visit(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.add(m)
        target = schema if m is model else schema.get("$defs", {}).get(m.__name__)
        for name, field in m.model_fields.items():
            if target and field.alias and field.alias != name and field.alias in target.get("properties", {}):
                target["properties"].setdefault(name, target["properties"][field.alias])
            for arg in _models_in(field.annotation):
                visit(arg)

    visit(model)


def _models_in(annotation: Any) -> list:
    import typing

    from pydantic import BaseModel

    out = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        out.append(annotation)
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _standalone_args(info_name: str):
    import importlib.util

    import axolotl.integrations as integrations

    path = Path(integrations.__path__[0]) / info_name / "args.py"
    spec = importlib.util.spec_from_file_location(f"axolotl.integrations.{info_name}.args", path)
    if spec is None or not path.exists():
        return None
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception:
        return None
    return mod


def plugin_models(info_name: str) -> list:
    """The pydantic models a plugin adds to the config: what its plugin class's get_input_args() names (as
    Axolotl's merge_input_args does), and every *Args model of its args module (for a plugin whose package
    cannot be imported here, e.g. llm_compressor without llmcompressor)."""
    import importlib
    import inspect

    from axolotl.integrations.base import BasePlugin
    from pydantic import BaseModel

    found: dict[str, type] = {}
    for sub in ("", ".plugin", ".plugins", ".args"):
        try:
            mod = importlib.import_module(f"axolotl.integrations.{info_name}{sub}")
        except Exception:  # an optional dependency is missing: read args.py alone, without the package's imports
            mod = _standalone_args(info_name) if sub == ".args" else None
            if mod is None:
                continue
        for name, obj in list(vars(mod).items()):
            if inspect.isclass(obj) and issubclass(obj, BasePlugin) and obj is not BasePlugin:
                try:
                    target = obj().get_input_args()
                except Exception:
                    target = None
                if target:
                    mod_name, cls_name = target.rsplit(".", 1)
                    found[target] = getattr(importlib.import_module(mod_name), cls_name)
            if (sub == ".args" and inspect.isclass(obj) and issubclass(obj, BaseModel) and name.endswith("Args")
                    and obj.__module__ == mod.__name__):
                found.setdefault(f"{mod.__name__}.{name}", obj)
    return [found[k] for k in sorted(found)]


def add_plugin_keys(schema: dict) -> None:
    """Plugins (Liger, cut-cross-entropy, SwanLab, ...) add their own top-level keys; list them, and which plugin
    owns each (`x-plugin-keys`), so a plugin key without its plugin can be flagged."""
    import pkgutil

    import axolotl.integrations as integrations

    owners: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(integrations.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        for model in plugin_models(info.name):
            sub = model.model_json_schema(schema_generator=AxolotlSchema, mode="validation")
            schema.setdefault("$defs", {}).update(sub.pop("$defs", {}))
            for key, prop in sub.get("properties", {}).items():
                if key not in schema["properties"]:
                    schema["properties"][key] = prop
                    owners[key] = f"axolotl.integrations.{info.name}"
    schema["x-plugin-keys"] = dict(sorted(owners.items()))


def add_removed_and_deprecated(schema: dict) -> None:
    """Keys Axolotl still parses only to refuse (`x-removed-keys`: its DeprecationWarning text) or to warn about
    (`x-deprecated-keys`: its log text), found by running each field validator of DeprecatedParameters on a set
    value (the first sample value of the field's type)."""
    import logging

    from axolotl.utils.schemas.deprecated import DeprecatedParameters
    from pydantic import ValidationError

    removed: dict[str, str] = {}
    warned: dict[str, str] = {}
    messages: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    loggers = [logging.getLogger(), logging.getLogger("axolotl")]
    handler = Catch(level=logging.WARNING)
    for lg in loggers:
        lg.addHandler(handler)
    try:
        for name in DeprecatedParameters.model_fields:
            for sample in (True, 1, "x", {"x": 1}):
                messages.clear()
                try:
                    DeprecatedParameters.model_validate({name: sample})
                except DeprecationWarning as exc:
                    removed[name] = str(exc)
                except ValidationError:
                    continue  # not this field's type: try the next sample
                else:
                    if messages:
                        warned[name] = messages[-1]
                break
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    schema["x-removed-keys"] = dict(sorted(removed.items()))
    schema["x-deprecated-keys"] = dict(sorted(warned.items()))


def add_rl_dataset_types(schema: dict) -> None:
    """The dataset `type` values each rl trainer can load (`x-rl-dataset-types`): module.function names in
    axolotl.prompt_strategies.{dpo,orpo,kto}, which Axolotl's RL data loader resolves `type` against."""
    import importlib
    import inspect
    import pkgutil

    out: dict[str, list[str]] = {}
    for package, rls in (("dpo", ("dpo", "ipo", "simpo")), ("orpo", ("orpo",)), ("kto", ("kto",))):
        pkg = importlib.import_module(f"axolotl.prompt_strategies.{package}")
        names = []
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
            names += [f"{info.name}.{n}" for n, f in vars(mod).items()
                      if inspect.isfunction(f) and f.__module__ == mod.__name__ and not n.startswith("_")]
        for rl in rls:
            out[rl] = sorted(names)
    schema["x-rl-dataset-types"] = out


def add_optimizer_names(schema: dict) -> None:
    """`optimizer` is typed as any string; Axolotl hands it to transformers, which knows a fixed list.
    Record that list (`x-optimizers`) so a typo is caught before a run starts."""
    from axolotl.utils.schemas.enums import CustomSupportedOptimizers
    from transformers.training_args import OptimizerNames

    names = {o.value for o in OptimizerNames} | {o.value for o in CustomSupportedOptimizers}
    schema["x-optimizers"] = sorted(names)


def main(out_dir: Path) -> Path:
    import axolotl
    from axolotl.utils.schemas.config import AxolotlInputConfig

    schema = AxolotlInputConfig.model_json_schema(schema_generator=AxolotlSchema, mode="validation")
    add_field_names(AxolotlInputConfig, schema)
    add_plugin_keys(schema)
    add_optimizer_names(schema)
    add_removed_and_deprecated(schema)
    add_rl_dataset_types(schema)
    # Models Axolotl itself closes (extra="forbid"): an unknown key there is refused, not ignored
    schema["x-closed"] = sorted(n for n, d in schema.get("$defs", {}).items() if d.get("additionalProperties") is False)
    close_objects(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Axolotl {axolotl.__version__} config (AxolotlInputConfig), unknown keys rejected"
    schema["x-axolotl-version"] = axolotl.__version__
    path = out_dir / f"axolotl-{axolotl.__version__}.schema.json"
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    print(f"wrote {main(target)}")
