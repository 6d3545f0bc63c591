"""results/<experiment>.json in the study plan's benchmark-workflow shape (shared/docs/study-plan.md,
"Benchmark Workflow Template"): base_model_scores, finetuned_scores and improvement {absolute, relative} per
benchmark, one entry per method, validated against ftstudy/study/schemas/plan_results.schema.json.

The figures come from the comparison rows (two self-describing results each), so the file is a view, rewritten
whole and atomically after each comparison; the other methods' entries are kept.

Example:
    $ ftstudy compare classification          # also writes results/classification.json
    $ jq '.methods.lora.improvement' results/classification.json
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftstudy.core.errors import UserError
from ftstudy.core.fsio import read_json, write_json
from ftstudy.core.names import under

SCHEMA = Path(__file__).with_name("schemas") / "plan_results.schema.json"


def entry(experiment: str, model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One method's entry, in the plan's template shape, from comparison rows that have both scores."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("base") is not None and r.get("ft") is not None]
    return {
        "experiment": experiment,
        "model": model,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model_scores": {r["benchmark"]: r["base"] for r in ok},
        "finetuned_scores": {r["benchmark"]: r["ft"] for r in ok},
        "improvement": {r["benchmark"]: {"absolute": r["ft"] - r["base"],
                                         "relative": (r["ft"] - r["base"]) / r["base"] * 100 if r["base"] else None}
                        for r in ok},
    }


def validate(doc: dict[str, Any]) -> None:
    """Raise UserError naming the first schema violation."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top)"
        raise UserError(f"plan-shaped results at {where}: {errors[0].message}")


def write(root: Path, experiment: str, method: str, base_model: str, model: str, rows: list[dict[str, Any]]) -> Path:
    """Add or replace one method's entry in root/<experiment>.json; returns the path."""
    path = under(root, "{experiment}.json", experiment=experiment)
    doc: dict[str, Any] = {"experiment": experiment, "base_model": base_model, "methods": {}}
    if path.is_file():
        try:
            old = read_json(path)
            if isinstance(old, dict) and isinstance(old.get("methods"), dict):
                doc["methods"] = old["methods"]
        except (OSError, ValueError):
            pass  # a damaged view is rebuilt from the results it summarises
    doc["methods"][method] = entry(experiment, model, rows)
    validate(doc)
    write_json(path, doc)
    return path
