"""Serving: one model behind an OpenAI-compatible server on loopback, for the harnesses that talk HTTP: the
server process, from start (wait until it answers) to stop (its whole process group).

The engines and their command lines are in serve_argv.py.

Example:
    >>> from ftstudy.eval.serve import Server
    >>> with Server("/models/tiny") as url:            # doctest: +SKIP
    ...     print(url)                                 # picks a free loopback port, waits until it answers
    http://127.0.0.1:41877
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ftstudy.core import runner
from ftstudy.eval.client import answers
from ftstudy.eval.serve_argv import ServeError, launch_argv, pick_engine, request_name

# Stop ladder: SIGINT lets uvicorn/vLLM shut down cleanly (free GPU memory, remove IPC files), then harder.
_STOP_STEPS = ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))
_LIVE: set["Server"] = set()


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
    """`BenchContext.server_url`: builds and starts the server on the first call only (lm-eval needs none, and a
    CPU host cannot serve base + adapter), returns the same URL afterwards; `close()` (or the `with` block)
    stops it. `commands` (e.g. ctx.commands) gets the launch argv.

    Example:
        >>> with LazyServer("/models/tiny", commands=ctx.commands) as ctx.server_url:  # doctest: +SKIP
        ...     harness.get("toolcall")(ctx, bench)
    """

    def __init__(self, model: str, adapter: str | None = None, commands: list | None = None, **kwargs):
        self.model, self.adapter, self.kwargs = model, adapter, kwargs
        self.model_name, self.commands, self.argv = request_name(model, adapter), commands, []
        self.server: Server | None = None

    def __call__(self) -> str:
        if self.server is None:
            self.server = Server(self.model, self.adapter, **self.kwargs)
        if self.server.url is None or not self.server.alive():  # first call, or the server died: (re)start
            self.server.stop()
            self.server.start()
            self.argv = list(self.server.argv)
            if self.commands is not None and self.argv not in self.commands:
                self.commands.append(self.argv)
        return self.server.url

    def close(self) -> None:
        if self.server:
            self.server.stop()

    def __enter__(self) -> "LazyServer":
        return self

    def __exit__(self, *exc) -> None:
        if self.server:
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
