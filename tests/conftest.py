"""Shared test fixtures: what is expensive is made once per session and reused.

- `tiny_model`: the tiny Qwen2-shaped model (copied from the build cache, or built once).
- `served`: one `transformers serve` of the tiny model, started on first use (the generation tests share it).
- `axolotl_checks`: Axolotl's own validation of every config test_deep and test_validate_corpus ask about.
- `quick_demo`: one `ftstudy demo --quick` (a whole classification-LoRA study: prepare, train, bench, compare,
  report) with a judge key canary in its environment; test_demo, test_study and the key checks read it.
  A test that changes a shared study copies it first (`copy_study`).
Under pytest-xdist the users of each of these (tiny_model aside: a cached copy) run on one worker
(pytest_collection_modifyitems).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftstudy.train import tiny

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CANARY_ENV = "FTSTUDY_TEST_JUDGE_KEY"
CANARY = "sk-canary-7f3a9c1e5b2d4f60a8e1"

# Tests never reach the network: the tools run offline and read local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
# One math thread per tool process (Axolotl, lm-eval, the server), as the demo runs them (tiny.THREAD_ENV):
# the tiny model gains nothing from a second thread, and two threads on a busy 2-core machine (a CPU hog, the
# other xdist worker) spin-wait on each other, each step many times slower.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, tiny.THREAD_ENV[_name])


def pytest_configure(config):
    config.addinivalue_line("markers", "tools: runs a real heavy tool on the tiny model")
    config.addinivalue_line("markers", "xdist_group(name): run on the same pytest-xdist worker")


# pytest-xdist (`make test` runs `pytest -n 2 --dist loadgroup`) makes session and module fixtures once per
# worker. So the users of an expensive session fixture run on one worker, and so do the tests of a module that
# share a module-scoped fixture (a trained run, the Slurm cluster). Without xdist the marks do nothing.
SHARED_BY_GROUP = ("quick_demo", "served", "axolotl_checks")


def xdist_group(item) -> str | None:
    """The worker group of a test: its shared session fixture, else its module when it uses a module fixture."""
    names = getattr(item, "fixturenames", ())
    for name in SHARED_BY_GROUP:
        if name in names:
            return name
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    if any(d and d[-1].scope == "module" for d in (defs.get(n) for n in names)):
        return item.module.__name__
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ftstudy-cache")


@pytest.fixture(scope="session")
def tiny_model(cache_dir) -> Path:
    """The tiny Qwen2-shaped model with its locally trained tokenizer, built once for the whole session."""
    return tiny.build(cache_dir / "tiny-model", seed=0)


@pytest.fixture(scope="session")
def served(tiny_model):
    """One `transformers serve` of the tiny model for the session, started by its first user; always stopped."""
    from ftstudy.eval import serve

    with serve.LazyServer(str(tiny_model), engine="transformers", start_timeout=300) as lazy:
        yield lazy


@pytest.fixture(scope="session")
def axolotl_checks(tmp_path_factory) -> dict:
    """Axolotl's own validation (the pinned Axolotl, train environment) of every config the deep tests ask about,
    in ONE process (importing Axolotl is most of the cost): {"configs": {"deep": (paths, bad), "mirrored":
    [(case, path, accepted)], "corpus": [example paths]}, "found": {path: [Problem]}}."""
    from ftstudy.config.validate_deep import axolotl_check_many
    from tests import axolotl_corpus, test_deep, test_validate_corpus

    tmp = tmp_path_factory.mktemp("axolotl-checks")
    configs = {"deep": test_deep.configs(tmp / "deep"), "mirrored": test_validate_corpus.mirrored_configs(tmp / "mirrored"),
               "corpus": axolotl_corpus.files()}
    paths = [*configs["deep"][0], configs["deep"][1], *(p for _, p, _ in configs["mirrored"]), *configs["corpus"]]
    return {"configs": configs, "found": axolotl_check_many(paths)}


def wait_until(check, proc: subprocess.Popen | None = None, timeout: float = 600, poll: float = 0.05):
    """Poll `check` until it is true (returns True), `proc` has exited, or the deadline passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(check())
        time.sleep(poll)  # polls a condition (no fixed wait)
    return False


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory, tiny_model):
    """The quick demo from an empty folder, with a canary judge key in its environment; a second demo started
    on the same --out meanwhile must refuse. Returns (out, result, second, first pid, cwd). Read-only: copy it
    (`copy_study`) before running anything that writes into it."""
    base = tmp_path_factory.mktemp("demo")
    out, cwd = base / "demo", base / "cwd"
    cwd.mkdir()
    argv = [sys.executable, "-m", "ftstudy", "demo", "--quick", "--out", str(out)]
    env = {**os.environ, CANARY_ENV: CANARY, "OPENAI_API_KEY": CANARY}  # the judge key's default variable too
    first = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / "state" / ".demo.lock"
    assert wait_until(lambda: lock.exists() and "pid" in lock.read_text(), first, timeout=600), \
        f"the first demo never took its lock (exit {first.poll()})"
    second = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    stdout, stderr = first.communicate(timeout=1800)
    res = subprocess.CompletedProcess(argv, first.returncode, stdout, stderr)
    assert res.returncode == 0, res.stderr[-4000:]
    return out, res, second, first.pid, cwd


@pytest.fixture
def registry_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the registry (experiments.yaml and evals/) that ftstudy reads instead of its own
    ($FTSTUDY_REGISTRY_DIR; the registry is cached by path, so no reset is needed): edit it freely."""
    from ftstudy.core import bundled

    reg = tmp_path / "registry"
    shutil.copytree(bundled.evals_dir(), reg / "evals")
    shutil.copy(bundled.registry_dir() / "experiments.yaml", reg / "experiments.yaml")
    monkeypatch.setenv("FTSTUDY_REGISTRY_DIR", str(reg))
    return reg


def copy_study(src: Path, dest: Path) -> Path:
    """A private copy of a shared study folder (its tiny model and runs included), safe to rerun or change."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
