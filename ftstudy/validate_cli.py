"""`ftstudy validate`: the files to check, the report, the exit status."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ftstudy import validate


def targets(files, all_: bool) -> list[Path]:
    paths = [Path(f) for f in files]
    if all_:
        from ftstudy.gen import golden

        paths += sorted(golden())
    return paths


def run(files, all_: bool, hardware: str | None, deep: bool, echo: Callable[[str], None]) -> bool:
    """Validate each file and print every problem; True when none is an error."""
    paths = targets(files, all_)
    if not paths:
        echo("nothing to validate: give FILE... or --all")
        return False
    bad = 0
    found = {p: validate.validate_file(p, hardware) for p in paths}
    if deep:
        from ftstudy.deep import axolotl_check_many

        clean = [p for p in paths if p.is_file() and not validate.errors(found[p])]
        for p, extra in axolotl_check_many(clean).items() if clean else ():
            found[Path(p)] += extra
    for path in paths:
        problems = found[path]
        errs = validate.errors(problems)
        bad += bool(errs)
        status = "invalid" if errs else "ok"
        echo(f"{path}: {status}" + (f" ({len(errs)} error{'s' * (len(errs) != 1)})" if errs else ""))
        for p in problems:
            echo("  " + p.render())
    echo(f"{len(paths)} file(s) checked, {bad} invalid")
    return bad == 0
