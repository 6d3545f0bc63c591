"""What `ftstudy plan` does with its arguments: plan an experiment, check runs, or calibrate from runs.

Returns the JSON-able result and its text view; planner errors become one-line click errors.

Example:
    >>> out, text = run(("code",), None, "h100", "Qwen/Qwen2.5-7B", (), False, False)
    >>> out["fits"], sorted(k for k in out if k in ("memory_gb", "tokens", "hours", "plan_hours"))
    (True, ['hours', 'memory_gb', 'plan_hours', 'tokens'])
"""
from __future__ import annotations

from typing import Any

import click

from ftstudy.config.model_shape import PlanError


def run(targets: tuple[str, ...], method: str | None, hardware: str, base_model: str, sets: tuple[str, ...],
        check: bool, calibrate: bool) -> tuple[Any, str]:
    from ftstudy.config import gen
    from ftstudy.plan import views as planner_text

    if check and calibrate:
        raise click.UsageError("use --check or --calibrate, not both")
    if not targets:
        raise click.UsageError("give an experiment id (see `ftstudy list`), or run folders with --check/--calibrate")
    try:
        if calibrate:
            from ftstudy.plan.check import calibrate as fold
            from ftstudy.config.calibration import calibration_path

            profiles = fold(list(targets))
            return profiles, planner_text.render_calibration(profiles, str(calibration_path()))
        if check:
            from ftstudy.plan.check import check as check_run

            checks = [check_run(t) for t in targets]
            text = "\n\n".join(planner_text.render_check(c) for c in checks)
            return (checks[0] if len(checks) == 1 else checks), text
        if len(targets) > 1:
            raise click.UsageError("plan one experiment at a time (run folders need --check or --calibrate)")
        from ftstudy.plan import estimate as planner

        p = planner.plan(targets[0], method, hardware, base_model, overrides=gen.parse_set(tuple(sets)))
        return p, planner_text.render_plan(p)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
