"""Where ftstudy's bundled data lives: `evals/` and `axolotl_configs/` beside the package in a checkout,
or under `ftstudy/_bundled/` in an installed wheel."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
TOOL_SCRIPTS = PACKAGE / "tool_env_scripts"  # run by the tool environments' Python, never imported here
REPO = PACKAGE.parent


def _find(name: str) -> Path:
    for candidate in (REPO / name, PACKAGE / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    return REPO / name


def registry_dir() -> Path:
    """Where experiments.yaml lives: $FTSTUDY_REGISTRY_DIR (a copy with experiments.yaml and evals/), else the package's."""
    return Path(os.environ.get("FTSTUDY_REGISTRY_DIR") or PACKAGE / "config")


def evals_dir() -> Path:
    return registry_dir() / "evals" if os.environ.get("FTSTUDY_REGISTRY_DIR") else _find("evals")


def configs_dir() -> Path:
    return _find("axolotl_configs")


def schema_path() -> Path:
    return configs_dir() / "schema" / "axolotl-0.19.0.schema.json"


def deepspeed_dir() -> Path:
    return configs_dir() / "deepspeed"
