"""Axolotl's example configs (tests/fixtures/axolotl_examples/) and Axolotl's own verdict on each.

The verdicts (verdicts.json beside the examples) come from the pinned Axolotl in the train environment
(`ftstudy.config.validate_deep.axolotl_check_many`, one process for all files). test_validate_corpus.py compares ftstudy's fast
validation with them file by file; a `tools` test there re-runs Axolotl and fails when verdicts.json is stale.

    .venv/bin/python -m tests.axolotl_corpus            # agreement table of `ftstudy validate` vs the verdicts
    .venv/bin/python -m tests.axolotl_corpus --write    # re-run Axolotl and rewrite verdicts.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent / "fixtures" / "axolotl_examples"
VERDICTS = HERE / "verdicts.json"


def files() -> list[Path]:
    return sorted(p for p in (HERE / "examples").rglob("*") if p.suffix in (".yaml", ".yml"))


def rel(path: Path | str) -> str:
    return str(Path(path).resolve().relative_to(HERE))


def axolotl_verdicts(found: dict | None = None) -> dict[str, dict]:
    """Axolotl's verdict on every example: {"examples/x.yaml": {"ok": bool, "errors": [message, ...]}}; from
    `found` (axolotl_check_many's answer for these files, maybe among others) when given, else Axolotl is run."""
    from ftstudy.config.validate_deep import axolotl_check_many

    paths = files()
    found = found if found is not None else axolotl_check_many(paths)
    return {rel(p): {"ok": not found[str(p)], "errors": [x.render() for x in found[str(p)]]} for p in sorted(paths)}


def load_verdicts() -> dict[str, dict]:
    return json.loads(VERDICTS.read_text())


def ftstudy_verdicts(axolotl: bool | None = False) -> dict[str, dict]:
    """`ftstudy validate`'s verdict on every example: schema only (axolotl=False), with Axolotl (True; all
    files in one warm process), or whichever this machine has (None)."""
    from ftstudy.config import validate

    out = {}
    for p, probs in zip(files(), validate.validate_files(files(), axolotl=axolotl)):
        errs = validate.errors(probs)
        out[rel(p)] = {"ok": not errs, "errors": [x.render() for x in errs], "ftstudy_only": all(x.origin == "ftstudy"
                                                                                                  for x in errs)}
    return out


def compare(axolotl: dict[str, dict], ours: dict[str, dict]) -> dict[str, list[str]]:
    """false_alarms: Axolotl accepts, ftstudy rejects; misses: Axolotl rejects, ftstudy accepts."""
    return {"agree": [f for f in axolotl if axolotl[f]["ok"] == ours[f]["ok"]],
            "false_alarms": [f for f in axolotl if axolotl[f]["ok"] and not ours[f]["ok"]],
            "misses": [f for f in axolotl if not axolotl[f]["ok"] and ours[f]["ok"]]}


if __name__ == "__main__":
    if "--write" in sys.argv:
        t0 = time.perf_counter()
        verdicts = axolotl_verdicts()
        VERDICTS.write_text(json.dumps(verdicts, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        print(f"wrote {VERDICTS} ({len(verdicts)} files, {time.perf_counter() - t0:.1f}s)")
        sys.exit(0)
    table = compare(load_verdicts(), ftstudy_verdicts())
    if "-v" in sys.argv:
        ours = ftstudy_verdicts()
        for kind in ("false_alarms", "misses"):
            for f in table[kind]:
                print(kind, f, ours[f]["errors"] or load_verdicts()[f]["errors"])
    print(f"files {len(files())}  agree {len(table['agree'])}  false alarms {len(table['false_alarms'])}  "
          f"misses {len(table['misses'])}")
