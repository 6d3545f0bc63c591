"""results/<experiment>.json in the study plan's benchmark-workflow shape (shared/docs/study-plan.md,
"Benchmark Workflow Template"): base_model_scores, finetuned_scores and improvement {absolute, relative} per
benchmark, one entry per method, validated against ftstudy/study/schemas/plan_results.schema.json.

The figures come from the comparison rows (two self-describing results each), so the file is a view, rewritten
whole and atomically after each comparison; the other methods' entries are kept. It is strict JSON: a benchmark
whose score is undefined (NaN, an infinity) is left out like a missing one, never written as a bare NaN; the file
is read back against its schema, so a hand-edited one fails in one line naming the field.

Example:
    $ ftstudy compare classification          # also writes results/classification.json
    $ jq '.methods.lora.improvement' results/classification.json
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftstudy.core import checked_json
from ftstudy.core.errors import UserError
from ftstudy.core.names import under

SCHEMA = Path(__file__).with_name("schemas") / "plan_results.schema.json"


def entry(experiment: str, model: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One method's entry, in the plan's template shape, from comparison rows that have both scores."""
    ok = [r for r in rows if r.get("status") == "ok" and _finite(r.get("base")) and _finite(r.get("ft"))]
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


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


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
    if path.is_file():  # the other methods' entries are kept, so a damaged file is refused, not overwritten
        doc["methods"] = checked_json.read(path, SCHEMA, f"delete it: `ftstudy compare {experiment}` rebuilds it "
                                                         f"from the results under {Path(root) / experiment}")["methods"]
    doc["methods"][method] = entry(experiment, model, rows)
    validate(doc)
    checked_json.write(path, doc)
    return path
