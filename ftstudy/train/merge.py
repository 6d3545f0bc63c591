"""Merge a LoRA run's adapter into its base model with Axolotl, then check the merge numerically.

Example:
    $ ftstudy merge runs/code/lora-cpu-1a2b3c4d       # writes runs/code/lora-cpu-1a2b3c4d/merged/
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from ftstudy.core import tool_envs as envs
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import read_json, write_json
from ftstudy.core.file_locks import RunLock
from ftstudy.core.runner import check, run
from ftstudy.train.launch import tool_env
from ftstudy.core.bundled import TOOL_SCRIPTS



class MergeError(UserError, RuntimeError):
    pass


def merge_argv(python: str | Path, config: str | Path, adapter_dir: str | Path, output_dir: str | Path) -> list[str]:
    """Axolotl's merge-lora; it writes <output_dir>/merged (pure: tests assert it)."""
    return [str(python), "-m", "axolotl.cli.merge_lora", str(config), f"--lora_model_dir={adapter_dir}",
            f"--output_dir={output_dir}"]


def check_argv(python: str | Path, base: str, adapter: str | Path, merged: str | Path) -> list[str]:
    return [str(python), str(TOOL_SCRIPTS / "merge_check.py"), base, str(adapter), str(merged)]


def verdict(report: dict[str, Any], tolerance: float) -> str:
    """ok, mismatch (merged ≠ base+adapter) or zero_effect (the adapter changes nothing)."""
    if report["max_abs_diff_merged_vs_adapter"] > tolerance:
        return "mismatch"
    if report["max_abs_diff_adapter_vs_base"] <= 1e-6:
        return "zero_effect"
    return "ok"


def merge(run_dir: Path, tolerance: float = 1e-3, force: bool = False) -> dict[str, Any]:
    """Merge and check; returns the report also written to RUN/merge.json."""
    cfg = yaml.safe_load((run_dir / "launch.yaml").read_text())
    if not cfg.get("adapter"):
        card_caution(run_dir, _experiment(run_dir))
        return {"status": "not_needed", "model": str(run_dir),
                "message": "full fine-tuning: the run folder already holds the whole model; nothing to merge"}
    if not (run_dir / "adapter_config.json").exists():
        raise MergeError(f"{run_dir} has no adapter (adapter_config.json); did training finish? See {run_dir / 'train.log'}")
    done = run_dir / "merge.json"
    if done.exists() and (run_dir / "merged").is_dir() and not force:
        return read_json(done)
    python = envs.bin_path("train")
    env = tool_env(_hardware(run_dir))
    with RunLock(run_dir / ".lock", what=f"run {run_dir}"):
        tmp = run_dir / ".merge-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        log = run_dir / "merge.log"
        check(run(merge_argv(python, run_dir / "launch.yaml", run_dir, tmp), env=env, log=log, quiet=True),
              "Axolotl merge-lora", log)
        res = check(run(check_argv(python, cfg["base_model"], run_dir, tmp / "merged"), env=env, log=log,
                        quiet=True, tail_lines=200), "merge check", log)
        report = json.loads(next(l for l in reversed(res.tail) if l.startswith("{")))
        report["status"] = verdict(report, tolerance)
        report["tolerance"] = tolerance
        if report["status"] == "mismatch":
            write_json(run_dir / "merge-failed.json", report)
            raise MergeError(f"merged model differs from base+adapter by {report['max_abs_diff_merged_vs_adapter']:.3g} "
                             f"(> {tolerance}); kept for inspection in {tmp / 'merged'}")
        final = run_dir / "merged"
        shutil.rmtree(final, ignore_errors=True)
        (tmp / "merged").replace(final)
        shutil.rmtree(tmp, ignore_errors=True)
        report["model"] = str(final)
        card_caution(final, _experiment(run_dir))
        write_json(done, report)
    return report


CAUTION_MARK = "<!-- ftstudy caution -->"


def card_caution(model_dir: Path, experiment: str | None) -> None:
    """Put the study plan's caution for the experiment (not medical advice, not legal advice) at the top of the
    model's card (README.md), after any YAML front matter; idempotent; nothing for experiments without one."""
    from ftstudy.config import registry

    if experiment not in registry.experiment_ids():
        return
    caution = registry.experiment(experiment).plan.get("caution")
    card = model_dir / "README.md"
    text = card.read_text() if card.is_file() else ""
    if not caution or CAUTION_MARK in text:
        return
    front, body = "", text
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        end = text.index("\n---\n", 4) + 5
        front, body = text[:end], text[end:]
    block = f"{CAUTION_MARK}\n> **Caution ({experiment}):** {caution}\n\n"
    from ftstudy.core.fsio import atomic_write

    atomic_write(card, front + block + body)


def _experiment(run_dir: Path) -> str | None:
    tj = run_dir / "train.json"
    return read_json(tj).get("experiment") if tj.exists() else None


def _hardware(run_dir: Path) -> str:
    tj = run_dir / "train.json"
    return read_json(tj).get("hardware", "cpu") if tj.exists() else "cpu"
