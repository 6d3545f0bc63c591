"""Shared test fixtures: one tiny model built once per session, the tool environments' Pythons."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# Tests never reach the network: the tools run offline and read local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "tools: runs a real heavy tool on the tiny model")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ftstudy-cache")


@pytest.fixture(scope="session")
def tiny_model(cache_dir) -> Path:
    """The tiny Qwen2-shaped model with its locally trained tokenizer, built once for the whole session."""
    from ftstudy.train import tiny

    return tiny.build(cache_dir / "tiny-model", seed=0)
