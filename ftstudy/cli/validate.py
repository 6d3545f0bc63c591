"""`ftstudy validate`: the files to check (a folder means every YAML under it), the report, the exit status.

Example:
    >>> from pathlib import Path
    >>> [p.name for p in targets(["axolotl_configs/dpo"], False)]
    ['dpo.yaml']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ftstudy.config import validate


def targets(files, all_: bool) -> list[Path]:
    """The files named, and every *.yaml / *.yml under each folder named (sorted), then --all's."""
    paths: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            paths += sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file())
        else:
            paths.append(p)
    if all_:
        from ftstudy.config.gen import golden

        paths += sorted(golden())
    return paths


def check(paths: list[Path], hardware: str | None, deep: bool) -> dict[Path, list[validate.Problem]]:
    """Every file's problems; Axolotl is asked whenever the train environment exists (all files in one warm
    process), and `deep` insists on it (no train environment: a one-line error naming the install command)."""
    if deep:
        from ftstudy.core import tool_envs as envs

        envs.bin_path("train")  # raises EnvMissing (a UserError) with `ftstudy setup train`
    return dict(zip(paths, validate.validate_files(paths, hardware, axolotl=True if deep else None)))


def checked_by(found: dict[Path, list[validate.Problem]], hardware: str | None) -> str:
    """Who judged: Axolotl itself (for which hardware), or the schema-only check."""
    from ftstudy.config.axolotl_verdict import available, axolotl_version

    if any(validate.SCHEMA_ONLY in problems for problems in found.values()):
        return "; schema only: Axolotl's cross-field rules not checked"
    if not available():  # no file reached a check (unreadable, not YAML)
        return ""
    where = f"as on {hardware}" if hardware else "each as on the hardware its header names (none: this machine)"
    return f"; Axolotl {axolotl_version()}'s own validation, {where}"


def run(files, all_: bool, hardware: str | None, deep: bool, echo: Callable[[str], None],
        strict: bool = False, as_json: bool = False) -> bool:
    """Validate each file and print every problem; True when none is an error (with strict: nor a warning)."""
    paths = targets(files, all_)
    if not paths:
        empty = [f for f in files if Path(f).is_dir()]
        echo(f"no YAML files under {', '.join(map(str, empty))}" if empty else "nothing to validate: give FILE... or --all")
        return False
    found = check(paths, hardware, deep)
    bad = sum(bool(validate.errors(found[p], strict)) for p in paths)
    if as_json:
        rows = [{"path": str(p), "ok": not validate.errors(found[p], strict),
                 "problems": [{"path": x.path, "severity": x.severity, "message": x.message, "suggestion": x.suggestion}
                              for x in found[p]]} for p in paths]
        echo(json.dumps({"files": rows, "checked": len(paths), "invalid": bad, "strict": strict}, indent=1))
        return bad == 0
    warned = 0
    for path in paths:
        problems = found[path]
        errs = validate.errors(problems, strict)
        warned += any(x.severity == validate.WARNING for x in problems) and not errs
        status = "invalid" if errs else "ok"
        echo(f"{path}: {status}" + (f" ({len(errs)} error{'s' * (len(errs) != 1)})" if errs else ""))
        for p in problems:
            echo("  " + p.render())
    tail = f", {warned} ok with warnings" if warned else ""
    echo(f"{len(paths)} file(s) checked, {bad} invalid{tail}" + (" (--strict: warnings are errors)" if strict else "")
         + checked_by(found, hardware))
    return bad == 0
