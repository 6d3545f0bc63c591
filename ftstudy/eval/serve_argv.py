"""The command lines that serve one model behind an OpenAI-compatible server (pure builders; eval/serve.py runs them).

Engines (`envs.has_gpu()` picks one unless named):
  vllm          GPU hosts: `vllm serve MODEL`; a LoRA adapter is served on top of the base unmerged, with
                --max-lora-rank rounded up from the adapter's `r` to a value vLLM accepts.
  transformers  CPU: `transformers serve MODEL --device cpu` (eval environment). MODEL is the positional
                FORCE_MODEL: the weights load before /health answers (ready means ready), and requests must
                name the model by that exact string (any other name gets HTTP 400). It cannot apply a LoRA
                adapter, so base+adapter on CPU raises ServeError: `ftstudy merge RUN`, then serve RUN/merged.

Requests name the model with `request_name(model, adapter)`: a local folder by its absolute path, a hub id
as given, an adapter by LORA_NAME.

Example:
    >>> vllm_argv("Qwen/Qwen2.5-7B", port=8000, exe="vllm")[:3]
    ['vllm', 'serve', 'Qwen/Qwen2.5-7B']
"""
from __future__ import annotations

import json
from pathlib import Path

from ftstudy.core import tool_envs as envs
from ftstudy.core.errors import UserError

LORA_NAME = "ftstudy-adapter"
# vLLM's LoRAConfig.max_lora_rank is a Literal of these (1 too, but 8 costs nothing more and is always allowed).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
ENGINES = ("vllm", "transformers")


class ServeError(UserError, RuntimeError):
    """The server cannot be started or died; the message shows its log tail."""


def request_name(model: str, adapter: str | None = None) -> str:
    """The model name that requests carry: LORA_NAME for an adapter, a local folder's absolute path, else as given.

    Example:
        >>> request_name("Qwen/Qwen2.5-7B"), request_name("Qwen/Qwen2.5-7B", "runs/x")
        ('Qwen/Qwen2.5-7B', 'ftstudy-adapter')
    """
    if adapter:
        return LORA_NAME
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def read_adapter_rank(adapter: str | Path) -> int:
    """The LoRA rank `r` from an adapter folder's adapter_config.json (rank_pattern overrides count too)."""
    path = Path(adapter) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ServeError(f"cannot read the adapter's rank from {path}: {getattr(exc, 'strerror', None) or exc}") from None
    ranks = [cfg.get("r")] + list((cfg.get("rank_pattern") or {}).values())
    ranks = [int(r) for r in ranks if isinstance(r, (int, float)) and r > 0]
    if not ranks:
        raise ServeError(f"{path} has no LoRA rank 'r'")
    return max(ranks)


def lora_rank_bound(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`.

    Example:
        >>> lora_rank_bound(16), lora_rank_bound(24), lora_rank_bound(1)
        (16, 32, 8)
    """
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ServeError(f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_LORA_RANKS[-1]}); merge the adapter")


def vllm_argv(model: str, adapter: str | None = None, adapter_rank: int | None = None, *, port: int | str,
              host: str = "127.0.0.1", served_name: str | None = None, max_model_len: int | None = None,
              exe: str | Path | None = None) -> list[str]:
    """`vllm serve` for a model, optionally with one LoRA adapter on top (rank read from the adapter if not given).

    Example:
        >>> vllm_argv("Qwen/Qwen2.5-7B", port=8000, exe="vllm")
        ['vllm', 'serve', 'Qwen/Qwen2.5-7B', '--host', '127.0.0.1', '--port', '8000', '--served-model-name', 'Qwen/Qwen2.5-7B']
    """
    exe = exe or envs.bin_path("eval", "vllm")
    argv = [str(exe), "serve", str(model), "--host", host, "--port", str(port),
            "--served-model-name", served_name or request_name(model)]
    if max_model_len:
        argv += ["--max-model-len", str(int(max_model_len))]
    if adapter:
        rank = adapter_rank if adapter_rank is not None else read_adapter_rank(adapter)
        argv += ["--enable-lora", "--lora-modules", f"{LORA_NAME}={Path(adapter).resolve()}",
                 "--max-lora-rank", str(lora_rank_bound(rank))]
    return argv


def transformers_argv(model: str, *, port: int | str, host: str = "127.0.0.1", exe: str | Path | None = None) -> list[str]:
    """`transformers serve` pinned to one model on CPU (see the module docstring for why it is pinned).

    Example:
        >>> transformers_argv("Qwen/Qwen2.5-7B", port=8000, exe="transformers")
        ['transformers', 'serve', 'Qwen/Qwen2.5-7B', '--device', 'cpu', '--host', '127.0.0.1', '--port', '8000']
    """
    exe = exe or envs.bin_path("eval", "transformers")
    return [str(exe), "serve", request_name(model), "--device", "cpu", "--host", host, "--port", str(port)]


def pick_engine(engine: str | None = None) -> str:
    """The engine named, else vllm on a GPU host and transformers elsewhere."""
    if engine is None:
        return "vllm" if envs.has_gpu() else "transformers"
    if engine not in ENGINES:
        raise ServeError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return engine


def launch_argv(model: str, adapter: str | None = None, *, engine: str, port: int | str,
                host: str = "127.0.0.1", max_model_len: int | None = None) -> list[str]:
    """The argv that serves model (+ adapter) with an engine; refuses an adapter on transformers serve.

    Example:
        >>> launch_argv("m", "runs/a", engine="transformers", port=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ftstudy.eval.serve_argv.ServeError: transformers serve cannot apply a LoRA adapter ...
    """
    if engine == "vllm":
        return vllm_argv(model, adapter, port=port, host=host, max_model_len=max_model_len)
    if adapter:
        merged = Path(adapter) / "merged"
        hint = f" ({merged} exists: serve that)" if (merged / "config.json").exists() else ""
        raise ServeError(
            f"transformers serve cannot apply a LoRA adapter ({adapter}). On CPU, merge it into the base first "
            f"with `ftstudy merge RUN` and serve RUN/merged as the model{hint}; or use --engine vllm on a GPU host.")
    return transformers_argv(model, port=port, host=host)
