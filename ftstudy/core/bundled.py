"""Where ftstudy's bundled data lives: `evals/` and `axolotl_configs/` beside the package in a checkout,
or under `ftstudy/_bundled/` in an installed wheel."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
TOOL_SCRIPTS = PACKAGE / "tool_env_scripts"  # run by the tool environments' Python, never imported here
REPO = PACKAGE.parent


def _find(name: str) -> Path:
    for candidate in (REPO / name, PACKAGE / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    return REPO / name


def evals_dir() -> Path:
    return _find("evals")


def configs_dir() -> Path:
    return _find("axolotl_configs")


def schema_path() -> Path:
    return configs_dir() / "schema" / "axolotl-0.19.0.schema.json"


def deepspeed_dir() -> Path:
    return configs_dir() / "deepspeed"
