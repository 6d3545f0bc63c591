"""The tiny Qwen2-shaped base model that the tests and the CPU demo run on: a locally trained byte-level BPE
tokenizer, a ChatML chat template with Qwen-style tool markup, and weights briefly pretrained on a bundled general
corpus (tool_env_scripts/pretrain_corpus.txt), so that fine-tuning adapts a model that already models language.

The work happens in tool_env_scripts/build_tiny.py under the train environment's Python (the core imports no torch);
this module decides whether a build is needed and makes it atomic: the model is built in a temporary folder
beside DIR, the manifest `tiny-model.json` (parameters + file hashes) is written last, and the folder is then
renamed into place, so a killed build never leaves half a model where DIR is.

Example:
    >>> from ftstudy.train import tiny
    >>> path = tiny.build("/tmp/tiny-model", seed=0)     # ~1 min the first time, instant afterwards
    >>> (path / "model.safetensors").exists()
    True
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ftstudy.core import tool_envs as envs
from ftstudy.core import runner
from ftstudy.core.file_locks import RunLock
from ftstudy.core.fsio import write_json
from ftstudy.core.bundled import TOOL_SCRIPTS

# One fixed thread count for every CPU computation of the demo (pretraining here, training and evaluation in
# the tools): a float reduction split over another number of threads rounds differently, and a greedy decode or
# a close multiple-choice comparison can then flip. Fixed, not the core count, so that machines agree. One:
# the tiny model's 128-wide matrices gain little from a second thread, and on a busy 2-core machine a team of
# two spin-waits on each other (measured: 19 s a pretraining step with 2 threads, 0.7 s with 1).
# PYTHONHASHSEED: no set's iteration order may differ between runs. (It did NOT cure the LoRA runs that
# differed between clones, 0.933 vs 0.700: their start is fixed by demo.initial_adapter.)
THREADS = 1
THREAD_ENV = {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS), "PYTHONHASHSEED": "0"}

SCRIPT = TOOL_SCRIPTS / "build_tiny.py"
CORPUS = TOOL_SCRIPTS / "tiny_corpus.txt"
PRETRAIN_CORPUS = TOOL_SCRIPTS / "pretrain_corpus.txt"
MANIFEST = "tiny-model.json"
# ~1000 tokens: 2.4 characters a token on held-out news, JSON and code; a vocabulary of 500 costs 15% more
# tokens, 1500 saves only 10%, and the bundled text runs out of merges near 1700.
VOCAB = 1000
# Next-token steps on the general corpus (batch 16 x 128 tokens, ~4 passes over it): about a minute on 2 cores.
PRETRAIN_STEPS = 300
# Finished builds are kept here by their parameters, so a fresh clone's demo copies the model in seconds.
CACHE = Path(os.environ.get("FTSTUDY_TINY_CACHE", Path.home() / ".cache" / "ftstudy" / "tiny"))

def params(layers: int = 4, hidden: int = 128, vocab: int = VOCAB, seed: int = 0,
           pretrain_steps: int = PRETRAIN_STEPS) -> dict:
    """What a build depends on: the shape, the seed, and a digest of the script and corpus that make it
    (so that editing either one rebuilds cached models instead of reusing stale ones).

    Example:
        >>> params(layers=2)["layers"]
        2
    """
    if not isinstance(pretrain_steps, int) or pretrain_steps < 0:
        raise ValueError(f"pretrain_steps must be 0 (random weights) or more, got {pretrain_steps!r}")
    for name, value in (("layers", layers), ("hidden", hidden), ("vocab", vocab)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if hidden % 8:
        raise ValueError(f"hidden must be a multiple of 8 (4 heads with an even head size), got {hidden}")
    if vocab < 300:
        raise ValueError(f"vocab must be at least 300 (256 bytes + markup + some merges), got {vocab}")
    recipe = hashlib.sha256(SCRIPT.read_bytes() + b"\0" + CORPUS.read_bytes() + b"\0"
                            + PRETRAIN_CORPUS.read_bytes()).hexdigest()[:16]
    return {"layers": layers, "hidden": hidden, "vocab": vocab, "seed": int(seed), "pretrain_steps": pretrain_steps,
            "recipe": recipe}


def is_built(path: str | Path, want: dict) -> bool:
    """True when `path` holds a whole model built with parameters `want` whose files still match their hashes.

    Example:
        >>> is_built("/nonexistent", params())
        False
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files") or {}
    return manifest.get("params") == want and bool(files) and all(
        (path / name).is_file() and _sha256(path / name) == digest for name, digest in files.items())


def build(path: str | Path, layers: int = 4, hidden: int = 128, vocab: int = VOCAB, seed: int = 0,
          log: Callable[[str], None] | None = None, pretrain_steps: int = PRETRAIN_STEPS,
          cache: Path | None = CACHE) -> Path:
    """Build the tiny model into `path`, or return it at once when it is already there with these parameters.

    The same seed gives byte-identical weights and tokenizer files (pretraining runs deterministic algorithms
    on a fixed thread count). A folder holding anything other than a tiny model is never overwritten
    (ValueError); one holding a tiny model of other parameters is replaced. A whole build of the same
    parameters in `cache` is copied instead of rebuilt; a new build is also stored there.

    Example:
        >>> build("/tmp/tiny-small", layers=2, hidden=64, vocab=500, seed=1)
        PosixPath('/tmp/tiny-small')
    """
    path = Path(path)
    want = params(layers, hidden, vocab, seed, pretrain_steps)
    if is_built(path, want):
        return path
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST).exists())):
        raise ValueError(f"{path} exists and is not a tiny model; refusing to overwrite it")
    python = envs.bin_path("train")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    stored = cache / hashlib.sha256(json.dumps(want, sort_keys=True).encode()).hexdigest()[:16] if cache else None
    try:
        with _cache_lock(stored):  # two builds of one model at once (pytest workers, two demos): one builds, one copies
            _build_or_copy(tmp, path, stored, want, python, log)
        _move_into_place(tmp, path, want)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _cache_lock(stored: Path | None):
    """A waiting lock on one cache entry (none without a cache, or where the cache folder cannot be made)."""
    if stored is None:
        return contextlib.nullcontext()
    try:
        stored.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return contextlib.nullcontext()
    return RunLock(stored.parent / f".{stored.name}.lock", what="a tiny-model cache entry", wait=True)


def _build_or_copy(tmp: Path, path: Path, stored: Path | None, want: dict, python, log) -> None:
    """Fill `tmp` with a whole model: a copy of the cache entry when it is whole, else a build (then cached)."""
    if stored is not None and is_built(stored, want):
        if log:
            log(f"copying the tiny model from {stored} to {path}")
        shutil.copytree(stored, tmp, dirs_exist_ok=True)
        return
    if log:
        log(f"building the tiny model in {path} ({want['layers']} layers, hidden {want['hidden']}, vocab "
            f"{want['vocab']}, seed {want['seed']}, {want['pretrain_steps']} pretraining steps)")
    argv = [python, SCRIPT, "--out", tmp, "--layers", want["layers"], "--hidden", want["hidden"], "--vocab",
            want["vocab"], "--seed", want["seed"], "--corpus", CORPUS, "--pretrain-steps", want["pretrain_steps"],
            "--pretrain-corpus", PRETRAIN_CORPUS]
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **THREAD_ENV}
    runner.check(runner.run(argv, env=env, quiet=True), "building the tiny model")
    files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    write_json(tmp / MANIFEST, {"params": want, "files": files})  # last: its presence means "whole"
    if stored is not None:
        _store(tmp, stored, want)


def _store(built: Path, stored: Path, want: dict) -> None:
    """Keep a copy of a whole build in the cache (best effort: a read-only home only costs the next rebuild)."""
    try:
        stored.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stored.name}.", suffix=".tmp", dir=stored.parent))
        shutil.copytree(built, tmp, dirs_exist_ok=True)
        _move_into_place(tmp, stored, want)
    except OSError:
        pass


def _move_into_place(tmp: Path, path: Path, want: dict) -> None:
    """Rename the finished build to `path`. An older tiny model there is moved aside first and deleted after,
    so `path` holds either the old whole model, nothing, or the new whole model, never a mix."""
    old = None
    if path.exists() and any(path.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old)  # replaces the empty placeholder folder
    try:
        os.replace(tmp, path)  # onto a missing or empty folder: atomic on POSIX
    except OSError:
        # Another process finished the same build first: theirs is as good as ours.
        if not is_built(path, want):
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
