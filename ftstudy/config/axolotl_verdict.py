"""Axolotl's own verdict on a config: the pinned Axolotl in the train environment runs `prepare_plugins` then
`validate_config`, as `axolotl train` does, with the capabilities of the hardware profile the config is for
(profiles.axolotl_capabilities). The tool side is ftstudy/tool_env_scripts/axolotl_validate.py.

Fast twice over: one warm process answers every config of this ftstudy process (importing Axolotl takes
seconds, checking a config a few milliseconds), and each verdict is cached on disk under a key of the YAML
text, the capabilities and the Axolotl version ($FTSTUDY_VALIDATE_CACHE, default ~/.cache/ftstudy/validate;
atomic writes, so a cache file is whole or absent; the tool script's hash is in the key too).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from ftstudy.core import fsio
from ftstudy.core import tool_envs as envs
from ftstudy.core import runner
from ftstudy.core.bundled import TOOL_SCRIPTS

SCRIPT = TOOL_SCRIPTS / "axolotl_validate.py"
START_TIMEOUT_S = 300  # the first import of Axolotl on a cold disk with 2 busy cores
Caps = tuple[dict[str, Any], dict[str, Any]] | None  # None: this machine, probed as `axolotl train` probes it


def available() -> bool:
    """Whether the train environment (hence Axolotl) is installed."""
    try:
        envs.bin_path("train")
        return True
    except envs.EnvMissing:
        return False


def axolotl_version() -> str:
    """The installed Axolotl's version, read from its package metadata (no Python start)."""
    root = envs.location("train")
    found = sorted(root.glob("lib/python*/site-packages/axolotl-*.dist-info"))
    return found[0].name[len("axolotl-"):-len(".dist-info")] if found else "unknown"


def capabilities(hardware: str | None) -> Caps:
    """The profile's capabilities; with no profile, this machine's: stated for a CPU host (nothing to probe),
    probed on a GPU host."""
    from ftstudy.config.profiles import axolotl_capabilities

    if hardware is None:
        return None if envs.has_gpu() else axolotl_capabilities("cpu")
    return axolotl_capabilities(hardware)


def cache_dir() -> Path:
    return Path(os.environ.get("FTSTUDY_VALIDATE_CACHE", Path.home() / ".cache" / "ftstudy" / "validate"))


def cache_key(text: str, caps: Caps, version: str) -> str:
    """Of the text, the capabilities, Axolotl's version and the tool script (a changed script asks again)."""
    tool = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps([text, caps, version, tool], sort_keys=True).encode()).hexdigest()


def tool_env() -> dict[str, str]:
    """The warm process's whole environment: what Python and a GPU probe need, never a key (validation reads
    no credential; the judge, HF and W&B keys of this shell stay out of a process that outlives the command)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HF_HOME")
    return {**{k: os.environ[k] for k in keep if k in os.environ},
            "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


class WarmAxolotl:
    """One train-environment Python with Axolotl imported, answering one config at a time."""

    def __init__(self) -> None:
        self.proc = runner.start([envs.bin_path("train"), SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, env=tool_env(), text=True, errors="replace")
        self.version = None
        self.next_id = 0
        ready = self.answer()
        self.version = ready.get("ready") if ready else None

    def answer(self) -> dict | None:
        """The next JSON line the tool prints (None: it died)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
        return None

    def check(self, text: str, caps: Caps) -> dict | None:
        """Axolotl's answer for one YAML text: {"ok": bool, "errors": [{"loc", "msg"}]}; None: the process died."""
        if self.version is None or self.proc.poll() is not None:
            return None
        self.next_id += 1
        req = {"id": self.next_id, "text": text, "capabilities": caps and caps[0], "env_capabilities": caps and caps[1]}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        got = self.answer()
        return got if got and got.get("id") == self.next_id else None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]  # end of requests: the tool exits
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


_warm: list[WarmAxolotl] = []


def warm() -> WarmAxolotl:
    """This process's warm Axolotl, started on first use, stopped at exit (or restarted if it died)."""
    if _warm and _warm[0].proc.poll() is None:
        return _warm[0]
    if _warm:
        _warm.pop().close()
    _warm.append(WarmAxolotl())
    if len(_warm) == 1:
        atexit.register(stop)
    return _warm[0]


def stop() -> None:
    while _warm:
        _warm.pop().close()


def verdicts(items: list[tuple[str, Caps]], use_cache: bool = True) -> list[dict]:
    """Axolotl's answer for each (YAML text, capabilities): {"ok": bool, "errors": [{"loc", "msg"}]}, or
    {"ok": None, "errors": [...]} for a config Axolotl could not be asked about (its process died)."""
    version = axolotl_version()
    out: list[dict] = []
    for text, caps in items:
        path = cache_dir() / f"{cache_key(text, caps, version)}.json"
        if use_cache and caps is not None and path.is_file():
            try:
                out.append(json.loads(path.read_text()))
                continue
            except (OSError, json.JSONDecodeError):
                pass  # a damaged cache file is asked again and rewritten
        got = warm().check(text, caps)
        if got is None:
            out.append({"ok": None, "errors": [{"loc": "", "msg": "Axolotl's validation could not run (see "
                                                "`ftstudy doctor`)"}]})
            stop()  # the next config gets a fresh process
            continue
        got = {"ok": got["ok"], "errors": got["errors"]}
        if caps is not None:  # a probed verdict is of this machine only: not cached
            fsio.atomic_write(path, json.dumps(got))
        out.append(got)
    return out
