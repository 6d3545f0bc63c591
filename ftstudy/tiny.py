"""The tiny Qwen2-shaped model that the tests and the CPU demo run on: random weights, a locally trained
byte-level BPE tokenizer, a ChatML chat template with Qwen-style tool markup.

The work happens in toolside/build_tiny.py under the train environment's Python (the core imports no torch);
this module decides whether a build is needed and makes it atomic: the model is built in a temporary folder
beside DIR, the manifest `tiny-model.json` (parameters + file hashes) is written last, and the folder is then
renamed into place, so a killed build never leaves half a model where DIR is.

Example:
    >>> from ftstudy import tiny
    >>> path = tiny.build("/tmp/tiny-model", seed=0)     # ~15 s the first time, instant afterwards
    >>> (path / "model.safetensors").exists()
    True
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ftstudy import envs, runner
from ftstudy.fsio import write_json

TOOLSIDE = Path(__file__).with_name("toolside")
SCRIPT = TOOLSIDE / "build_tiny.py"
CORPUS = TOOLSIDE / "tiny_corpus.txt"
MANIFEST = "tiny-model.json"
# ~1000 tokens: 2.4 characters a token on held-out news, JSON and code; a vocabulary of 500 costs 15% more
# tokens, 1500 saves only 10%, and the bundled text runs out of merges near 1700.
VOCAB = 1000


def params(layers: int = 4, hidden: int = 128, vocab: int = VOCAB, seed: int = 0) -> dict:
    """What a build depends on: the shape, the seed, and a digest of the script and corpus that make it
    (so that editing either one rebuilds cached models instead of reusing stale ones).

    Example:
        >>> params(layers=2)["layers"]
        2
    """
    for name, value in (("layers", layers), ("hidden", hidden), ("vocab", vocab)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if hidden % 8:
        raise ValueError(f"hidden must be a multiple of 8 (4 heads with an even head size), got {hidden}")
    if vocab < 300:
        raise ValueError(f"vocab must be at least 300 (256 bytes + markup + some merges), got {vocab}")
    recipe = hashlib.sha256(SCRIPT.read_bytes() + b"\0" + CORPUS.read_bytes()).hexdigest()[:16]
    return {"layers": layers, "hidden": hidden, "vocab": vocab, "seed": int(seed), "recipe": recipe}


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
          log: Callable[[str], None] | None = None) -> Path:
    """Build the tiny model into `path`, or return it at once when it is already there with these parameters.

    The same seed gives byte-identical weights and tokenizer files. A folder holding anything other than a
    tiny model is never overwritten (ValueError); one holding a tiny model of other parameters is replaced.

    Example:
        >>> build("/tmp/tiny-small", layers=2, hidden=64, vocab=500, seed=1)
        PosixPath('/tmp/tiny-small')
    """
    path = Path(path)
    want = params(layers, hidden, vocab, seed)
    if is_built(path, want):
        return path
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST).exists())):
        raise ValueError(f"{path} exists and is not a tiny model; refusing to overwrite it")
    python = envs.bin_path("train")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        if log:
            log(f"building the tiny model in {path} ({layers} layers, hidden {hidden}, vocab {vocab}, seed {seed})")
        argv = [python, SCRIPT, "--out", tmp, "--layers", layers, "--hidden", hidden, "--vocab", vocab,
                "--seed", seed, "--corpus", CORPUS]
        env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        runner.check(runner.run(argv, env=env, quiet=True), "building the tiny model")
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json(tmp / MANIFEST, {"params": want, "files": files})  # last: its presence means "whole"
        _move_into_place(tmp, path, want)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


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
