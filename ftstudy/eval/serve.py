"""Serving: one model behind an OpenAI-compatible server on loopback, for the harnesses that talk HTTP.

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
    >>> from ftstudy.eval.serve import Server
    >>> with Server("/models/tiny") as url:            # doctest: +SKIP
    ...     print(url)                                 # picks a free loopback port, waits until it answers
    http://127.0.0.1:41877
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ftstudy.core import tool_envs as envs
from ftstudy.eval.client import answers
from ftstudy.core.errors import UserError
from ftstudy.core import runner

LORA_NAME = "ftstudy-adapter"
# vLLM's LoRAConfig.max_lora_rank is a Literal of these (1 too, but 8 costs nothing more and is always allowed).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
ENGINES = ("vllm", "transformers")
# Stop ladder: SIGINT lets uvicorn/vLLM shut down cleanly (free GPU memory, remove IPC files), then harder.
_STOP_STEPS = ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
_LIVE: set["Server"] = set()


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
        ftstudy.eval.serve.ServeError: transformers serve cannot apply a LoRA adapter ...
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


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it; a race with another process is retried by Server)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Server:
    """A model server for the duration of a `with` block: yields its base URL, always stops it on exit.
    It runs in its own process group (Ctrl-C in a terminal reaches ftstudy, which then stops the whole
    group, vLLM's engine processes included) and logs to `log` (default: a temporary file).

    Example:
        >>> with Server("/models/tiny", engine="transformers") as url:   # doctest: +SKIP
        ...     ...
    """

    def __init__(self, model: str, adapter: str | None = None, *, engine: str | None = None,
                 host: str = "127.0.0.1", port: int | None = None, log: str | Path | None = None,
                 start_timeout: float = 900.0, max_model_len: int | None = None):
        self.model, self.adapter, self.host, self.port = model, adapter, host, port
        self.engine = pick_engine(engine)
        self.model_name = request_name(model, adapter)
        self.start_timeout, self.max_model_len = start_timeout, max_model_len
        self._own_log = not log  # a log we made up is removed after a clean exit; one that explains a failure stays
        self.log = Path(log) if log else Path(tempfile.gettempdir()) / f"ftstudy-serve-{os.getpid()}-{id(self):x}.log"
        self.argv: list[str] = []
        self.url: str | None = None
        self._proc: subprocess.Popen | None = None
        self._offset = 0
        # Built once here so a missing environment or an adapter on CPU fails before anything starts.
        launch_argv(model, adapter, engine=self.engine, port=port or 0, host=host, max_model_len=max_model_len)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, exc_type, *_) -> None:
        self.stop()
        if exc_type is None and self._own_log:
            self.log.unlink(missing_ok=True)

    def start(self) -> str:
        """Start the server and wait until it answers; returns the base URL (no /v1)."""
        for _ in range(3):  # a free port can be taken between choosing it and the server binding it
            port = self.port or free_port(self.host)
            self.argv = launch_argv(self.model, self.adapter, engine=self.engine, port=port, host=self.host,
                                    max_model_len=self.max_model_len)
            with open(self.log, "a") as fh:
                self._offset = fh.tell()  # this attempt's output starts here: older attempts' lines are not its cause
                fh.write(f"$ {' '.join(self.argv)}\n")
                fh.flush()
                try:  # its own process group, and it dies with ftstudy, even a SIGKILLed one
                    self._proc = runner.start(self.argv, stdout=fh)
                except OSError as exc:
                    raise ServeError(f"cannot start {self.argv[0]}: {exc.strerror}. Try `ftstudy doctor`.") from None
            _LIVE.add(self)
            url = f"http://{self.host if ':' not in self.host else f'[{self.host}]'}:{port}"
            try:
                if self._wait(url):
                    self.url = url
                    return url
            except BaseException:  # Ctrl-C or a timeout while waiting: no server is left behind
                self.stop()
                raise
            self.stop()
            if self.port:
                break
        raise ServeError(f"port {self.port or 'picked'} on {self.host} is in use; {self.log_tail()}")

    def _wait(self, url: str) -> bool:
        """True once the server answers; False when it died because its port was taken; raises otherwise."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll() if self._proc else -1
            if code is not None:
                tail = self.log_tail()
                if "address already in use" in tail.lower():
                    return False
                raise ServeError(f"the {self.engine} server exited (code {code}) before answering at {url}. {tail}")
            if answers(url):
                return True
            if time.monotonic() > deadline:
                raise ServeError(f"the {self.engine} server did not answer at {url} within {self.start_timeout:g} s. "
                                 f"{self.log_tail()}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.url is not None

    def wait(self) -> int:
        """Block until the server process exits on its own; returns its exit code."""
        return self._proc.wait() if self._proc else 0

    def stop(self) -> None:
        """SIGINT, then SIGTERM, then SIGKILL to the server's whole process group; idempotent."""
        proc, self._proc, self.url = self._proc, None, None
        _LIVE.discard(self)
        if proc is None:
            return
        for sig, grace in _STOP_STEPS:
            if proc.poll() is not None and not _group_alive(proc.pid):
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + grace
            while time.monotonic() < end and (proc.poll() is None or _group_alive(proc.pid)):
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def log_tail(self, lines: int = 25) -> str:
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self._offset)
                text = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            text = []
        return f"Full log: {self.log}\n  " + "\n  ".join(text)


class LazyServer:
    """`BenchContext.server_url`: starts the server on the first call, returns the same URL afterwards;
    `close()` (or the `with` block) stops it. `commands` (e.g. ctx.commands) gets the launch argv.

    Example:
        >>> with LazyServer("/models/tiny", commands=ctx.commands) as ctx.server_url:  # doctest: +SKIP
        ...     harness.get("toolcall")(ctx, bench)
    """

    def __init__(self, model: str, adapter: str | None = None, commands: list | None = None, **kwargs):
        self.server = Server(model, adapter, **kwargs)
        self.model_name, self.commands, self.argv = self.server.model_name, commands, []

    def __call__(self) -> str:
        if self.server.url is None or not self.server.alive():  # first call, or the server died: (re)start
            self.server.stop()
            self.server.start()
            self.argv = list(self.server.argv)
            if self.commands is not None and self.argv not in self.commands:
                self.commands.append(self.argv)
        return self.server.url

    def close(self) -> None:
        self.server.stop()

    def __enter__(self) -> "LazyServer":
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)


def _group_alive(pgid: int) -> bool:
    try:
        return os.killpg(pgid, 0) is None
    except OSError:
        return False


@atexit.register
def _stop_all() -> None:
    """A server left running (an exception outside any `with`, a LazyServer never closed) dies with ftstudy."""
    for server in list(_LIVE):
        server.stop()
