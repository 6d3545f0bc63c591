"""Generate one Axolotl YAML per experiment × method × hardware profile.

The output is deterministic (fixed key order, no timestamps) and opens with a header naming the experiment,
method, hardware, the command that regenerates it and the command that trains it.

Example:
    >>> from ftstudy.config import gen
    >>> cfg = gen.build("code", method="lora", hardware="dgx-spark")
    >>> cfg["adapter"], cfg["base_model"]
    ('lora', 'Qwen/Qwen2.5-7B')
"""
from __future__ import annotations

import copy
import hashlib
import shlex
from pathlib import Path
from typing import Any

import yaml

from ftstudy import __version__
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config import tuning
from ftstudy.core import untrusted_yaml
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import atomic_write
from ftstudy.core.names import under
from ftstudy.core.bundled import configs_dir
from ftstudy.config.row_formats import SHAPES

DEFAULT_BASE_MODEL = "Qwen/Qwen2.5-7B"
DEFAULT_HARDWARE = "dgx-spark"
PREPARED_DIR = "data/prepared"
AXOLOTL_VERSION = "0.19.0"


class GenError(UserError, ValueError):
    """A request gen cannot satisfy (bad --set, too many --data, ...)."""


def source_name(source: registry.Source, data: str | None) -> str:
    """File stem of a source's prepared JSONL: the source's id (never its row shape, which two sources may
    share); a user's --data gets its own name so configs never collide."""
    stem = source.id
    if data:
        stem += "-" + hashlib.sha256(data.encode()).hexdigest()[:8]
    return stem


def dataset_entries(exp: registry.Experiment, data: list[str] | tuple[str, ...] = (),
                    sources: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Axolotl `datasets:` entries for the experiment's sources, or those named by --source (and the user's
    --data replacing them, in order). Each source has a file of its own."""
    sources = exp.select(sources)
    if len(data) > len(sources):
        raise GenError(
            f"{len(data)} --data given but experiment {exp.id!r} has {len(sources)} source(s): "
            + ", ".join(s.hub for s in sources)
        )
    entries = []
    for i, src in enumerate(sources):
        override = data[i] if i < len(data) else None
        entry = {"path": f"{PREPARED_DIR}/{exp.id}/{source_name(src, override)}.jsonl", "ds_type": "json", "split": "train"}
        entry.update(copy.deepcopy(SHAPES[src.shape]["axolotl"]))
        entries.append(entry)
    paths = [e["path"] for e in entries]
    if len(set(paths)) != len(paths):  # never two sources in one file: the second would overwrite the first
        raise GenError(f"experiment {exp.id!r}: two sources would share a prepared file: {paths}")
    return entries


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks, so configs read like hand-written ones."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse `KEY=VALUE` overrides; values are YAML (numbers, booleans, lists), keys may be dotted paths."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise GenError(f"--set {item!r}: expected KEY=VALUE, e.g. --set learning_rate=1e-4")
        try:  # the safe reader: a value nested too deep or an alias bomb is one line naming the key
            value = untrusted_yaml.load(raw, name=f"--set {key.strip()}") if raw.strip() else None
        except yaml.YAMLError as exc:
            raise GenError(f"--set {item!r}: value is not valid YAML ({exc.problem})") from None
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)
        out[key.strip()] = value
    return out


def _looks_numeric(text: str) -> bool:
    # YAML 1.1 reads "1e-4" as a string; a learning rate typed that way must still be a number.
    try:
        float(text)
    except ValueError:
        return False
    return True


def set_key(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply one --set override to a config: a dotted path (list items by index); None removes the key.

    Example:
        >>> cfg = {"datasets": [{"path": "a.jsonl"}], "seed": 1}
        >>> set_key(cfg, "datasets.0.path", "b.jsonl"); set_key(cfg, "seed", None); cfg
        {'datasets': [{'path': 'b.jsonl'}]}
    """
    parts = dotted.split(".")
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(node, list) else part
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise GenError(f"--set {dotted}: {'.'.join(parts[: i + 1])} does not exist in the generated config") from None
    last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value is None and isinstance(node, dict):
        node.pop(last, None)
    else:
        node[last] = value


def build(
    exp_id: str,
    method: str | None = None,
    hardware: str = DEFAULT_HARDWARE,
    base_model: str = DEFAULT_BASE_MODEL,
    data: list[str] | tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    sources: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The Axolotl config for one experiment × method × profile, as an ordered dict."""
    exp = registry.experiment(exp_id)
    method = method or exp.methods[0]
    registry.check_method(exp, method)
    prof = profiles.profile(hardware)
    hyper = exp.hyper(method)
    settings = {**profiles.METHOD_SETTINGS[method], **{k: v for k, v in hyper.items() if k.startswith(("lora_", "dpo_"))}}
    if method == "qlora" and not prof["gpu"]:
        settings["load_in_4bit"] = True  # bitsandbytes 4-bit is still requested; Axolotl runs it on CPU

    cfg: dict[str, Any] = {
        "base_model": base_model,
        "model_type": "AutoModelForCausalLM",
        "tokenizer_type": "AutoTokenizer",
        "chat_template": "tokenizer_default",
    }
    if "rl" in settings:
        cfg["rl"] = settings.pop("rl")
    if "dpo_beta" in settings:
        cfg["rl_beta"] = settings.pop("dpo_beta")
    cfg["datasets"] = dataset_entries(exp, data, sources)
    if "rl" in cfg:  # Axolotl's preference dataset model has no ds_type (it would be dropped); .jsonl reads as json
        for entry in cfg["datasets"]:
            entry.pop("ds_type", None)
    cfg["dataset_prepared_path"] = "last_run_prepared"
    cfg["val_set_size"] = 0.0
    cfg["sequence_len"] = min(exp.sequence_len, prof["max_sequence_len"])
    cfg.update(settings)
    cfg.update(profiles.batch_settings(hardware, method))
    cfg["num_epochs"] = hyper.get("num_epochs", 1)
    cfg["optimizer"] = profiles.OPTIMIZERS[profiles.base_name(hardware)][method]
    cfg["lr_scheduler"] = "cosine"
    cfg["learning_rate"] = hyper.get("learning_rate", 0.0002)
    cfg["warmup_ratio"] = 0.03
    cfg["weight_decay"] = 0.0
    cfg["train_on_inputs"] = False
    cfg.update(copy.deepcopy(prof["axolotl"]))
    cfg.update(profiles.METHOD_FINAL.get(method, {}))
    from ftstudy.config import sharding  # several GPUs: ZeRO-2/3 or FSDP2 (and the optimizer that fits with it), as
                                  # the planner's memory model decides

    shard = sharding.choose(cfg, hardware)
    cfg.update(shard)
    # speed choices and memory fill (tuning.py), before the user's --set; what sharding chose stays
    tuning.apply(cfg, hardware, method, keep=set(shard))
    cfg["logging_steps"] = 1
    cfg["saves_per_epoch"] = 4
    cfg["save_total_limit"] = 3
    cfg["seed"] = exp.seed
    cfg["output_dir"] = f"runs/{exp.id}/{method}-{hardware}"
    for key, value in (overrides or {}).items():
        set_key(cfg, key, value)
    return cfg


def command_line(exp_id: str, method: str, hardware: str, base_model: str, data: tuple[str, ...], sets: tuple[str, ...],
                 sources: tuple[str, ...] = ()) -> str:
    """The `ftstudy gen` command that reproduces a config (only non-default options)."""
    m = profiles.base_name(hardware)
    argv = ["ftstudy", "gen", exp_id, "--method", method, "--hardware", m]
    if m != hardware:
        argv += ["--nodes", str(profiles.profile(hardware)["nodes"])]
    if base_model != DEFAULT_BASE_MODEL:
        argv += ["--base-model", base_model]
    for src in sources:
        argv += ["--source", src]
    for d in data:
        argv += ["--data", d]
    for s in sets:
        argv += ["--set", s]
    return shlex.join(argv)


def render(cfg: dict[str, Any], exp_id: str, method: str, hardware: str, regen: str, path: str | None) -> str:
    """Deterministic YAML text with the header comment."""
    target = path or "CONFIG.yaml"
    header = [
        f"# ftstudy {__version__} · Axolotl {AXOLOTL_VERSION} config",
        f"# experiment: {exp_id}   method: {method}   hardware: {hardware}",
        f"# regenerate: {regen}",
        f"# train:      ftstudy train {shlex.quote(target)}",
        f"#             (runs: accelerate launch -m axolotl.cli.train {shlex.quote(target)})",
        "# Generated from ftstudy/config/experiments.yaml and ftstudy/config/profiles.py: edit those, not this file.",
    ]
    body = yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
    return "\n".join(header) + "\n" + body


def golden_path(exp_id: str, method: str) -> Path:
    return configs_dir() / exp_id / f"{method}.yaml"


def golden() -> dict[Path, str]:
    """Every committed config: each experiment × method for Qwen2.5-7B on dgx-spark."""
    out = {}
    for exp in registry.experiments():
        for method in exp.methods:
            path = golden_path(exp.id, method)
            rel = f"axolotl_configs/{exp.id}/{method}.yaml"
            regen = command_line(exp.id, method, DEFAULT_HARDWARE, DEFAULT_BASE_MODEL, (), ())
            cfg = build(exp.id, method, DEFAULT_HARDWARE)
            out[path] = render(cfg, exp.id, method, DEFAULT_HARDWARE, regen, rel)
    return out


def write_all(check: bool = False) -> list[Path]:
    """Regenerate the committed configs; with check=True write nothing and return the stale files."""
    stale = []
    for path, text in golden().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                atomic_write(path, text)
    return stale



def write_one(exp_id, method, hardware, base_model, data, sets, output, sources=()) -> Path | None:
    """`ftstudy gen` for one config; returns the path written (None when printed to stdout)."""
    exp = registry.experiment(exp_id)
    method = method or exp.methods[0]
    cfg = build(exp_id, method, hardware, base_model, tuple(data), parse_set(tuple(sets)), tuple(sources))
    regen = command_line(exp_id, method, hardware, base_model, tuple(data), tuple(sets), tuple(sources))
    if output == "-":
        print(render(cfg, exp_id, method, hardware, regen, None), end="")
        return None
    path = Path(output) if output else under("axolotl_configs", "{experiment}", "{method}-{hardware}.yaml",
                                              where="gen", experiment=exp_id, method=method, hardware=hardware)
    if output:
        regen += f" -o {shlex.quote(output)}"
    atomic_write(path, render(cfg, exp_id, method, hardware, regen, str(path)))
    return path
