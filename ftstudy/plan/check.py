"""Predicted vs measured, after a run: `ftstudy plan --check RUN` and `ftstudy plan --calibrate RUN...`.

A run folder (written by `ftstudy train`) holds config.yaml (what Axolotl ran, with a header naming
experiment, method and hardware), data.json (the prepared data's manifests) and train.json (measured
`tokens_per_second` and `peak_memory_gb`). measure.py records that peak in GiB (KiB/1024² of RSS,
nvidia-smi MiB/1024) although the key says gb; it is converted to GB (1e9) here, the planner's unit.

Example:
    $ ftstudy plan --check runs/code/lora-cpu-1a2b3c4d
    $ ftstudy plan --calibrate runs/code/lora-cpu-1a2b3c4d runs/chat/lora-cpu-5e6f7a8b
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any


from ftstudy.config import registry
from ftstudy.core import untrusted_yaml as safeload
from ftstudy.core.fsio import atomic_write
from ftstudy.plan.estimate import estimate
from ftstudy.config.calibration import calibration_path, forget_calibration
from ftstudy.config.model_shape import PlanError
from ftstudy.config.validate import header_meta


def _read_run(run_dir: str | Path) -> tuple[dict, dict, dict]:
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise PlanError(f"{run}: no config.yaml here; give a run folder written by `ftstudy train`")
    text = safeload.read_text(run / "config.yaml")  # a run's config is input too: size and depth limits
    meta = header_meta(text)
    train = json.loads((run / "train.json").read_text()) if (run / "train.json").is_file() else {}
    for key in ("experiment", "method", "hardware"):
        meta[key] = train.get(key) or meta.get(key)
    if not meta.get("hardware"):
        raise PlanError(f"{run}: neither train.json nor the config header names the hardware profile")
    return safeload.load(text, name=str(run / "config.yaml")), train, meta


def predict_for_run(run_dir: str | Path) -> dict[str, Any]:
    """The planner's prediction for the exact config a run trained (memory, tokens/s, tokens).

    Tokens come from the manifests recorded in the run's data.json when it has them all.

    Example:
        >>> p = predict_for_run("runs/code/lora-cpu-1a2b3c4d")  # doctest: +SKIP
        >>> p["memory_gb"]["total"], p["throughput"]["tokens_per_second"]  # doctest: +SKIP
    """
    cfg, _, meta = _read_run(run_dir)
    exp = None
    if meta.get("experiment") in registry.experiment_ids():
        exp = registry.experiment(meta["experiment"])
    manifests = None
    data = Path(run_dir) / "data.json"
    if data.is_file():
        entries = json.loads(data.read_text()).get("datasets") or []
        got = [e.get("manifest") for e in entries]
        manifests = got if got and all(got) else None
    method = meta.get("method") or (cfg.get("adapter") or "full")
    return estimate(cfg, meta["hardware"], exp, method, manifests=manifests)


def _err(pred: float | None, meas: float | None) -> float | None:
    return round(100.0 * (pred - meas) / meas, 1) if pred is not None and meas else None


def check(run_dir: str | Path) -> dict[str, Any]:
    """Predicted vs measured peak memory and tokens/s of one run, with the error in percent."""
    _, train, meta = _read_run(run_dir)
    pred = predict_for_run(run_dir)
    peak = train.get("peak_memory_gb")
    measured_gb = peak  # train.json records GB (1e9 bytes), like the planner
    rows = [
        {"quantity": "peak_memory_gb", "predicted": pred["memory_gb"]["total"], "measured": measured_gb,
         "kind": train.get("peak_memory_kind")},
        {"quantity": "tokens_per_second", "predicted": pred["throughput"]["tokens_per_second"],
         "measured": train.get("tokens_per_second")},
    ]
    if train.get("tokens_per_epoch") and pred["tokens"]["source"] == "manifest":
        per_epoch = pred["tokens"]["train_tokens"] / (pred["tokens"]["epochs"] or 1)
        rows.append({"quantity": "tokens_per_epoch", "predicted": per_epoch, "measured": train["tokens_per_epoch"]})
    for r in rows:
        r["error_pct"] = _err(r["predicted"], r["measured"])
    return {"run": str(run_dir), **meta, "rows": rows, "prediction": pred}


def _measured_mfu(pred: dict, tokens_per_second: float) -> float:
    """MFU a run reached: real tokens/s ÷ packing efficiency × FLOPs/token ÷ (GPUs × peak × method speed)."""
    t = pred["throughput"]
    flops = tokens_per_second / pred["tokens"]["packing_efficiency"] * pred["flops_per_token"]
    return flops / (t["gpus"] * t["peak_tflops"] * 1e12 * t["method_speed"])


def calibrate(run_dirs: list[str | Path], path: str | Path | None = None) -> dict[str, Any]:
    """Fold measured runs into the calibration file: per profile, MFU = median of the runs' MFU and
    overhead_gb = median of (measured peak - the planner's peak without overhead). A run already listed is
    replaced, so calibrating twice changes nothing. Returns the updated profiles."""
    path = Path(path or calibration_path())
    cal = json.loads(path.read_text()) if path.is_file() else {"version": 1, "profiles": {}}
    touched = set()
    for run in run_dirs:
        _, train, meta = _read_run(run)
        tps = train.get("tokens_per_second")
        if not tps:
            raise PlanError(f"{run}: train.json has no tokens_per_second; calibrate from a finished run")
        pred = predict_for_run(run)
        entry = {"run": str(run), "experiment": meta.get("experiment"), "method": meta.get("method"),
                 "tokens_per_second": tps, "mfu": round(_measured_mfu(pred, tps), 5)}
        if train.get("peak_memory_gb"):
            entry["peak_memory_gb"] = round(train["peak_memory_gb"], 4)
            entry["predicted_without_overhead_gb"] = round(pred["memory_gb"]["total"] - pred["memory_gb"]["overhead"], 4)
        prof = cal.setdefault("profiles", {}).setdefault(meta["hardware"], {})
        prof["runs"] = [r for r in prof.get("runs", []) if r["run"] != str(run)] + [entry]
        touched.add(meta["hardware"])
    for hw in touched:
        prof = cal["profiles"][hw]
        prof["mfu"] = round(statistics.median(r["mfu"] for r in prof["runs"]), 5)
        resid = [r["peak_memory_gb"] - r["predicted_without_overhead_gb"] for r in prof["runs"] if "peak_memory_gb" in r]
        if resid:
            prof["overhead_gb"] = round(max(0.0, statistics.median(resid)), 3)
    cal["version"] = cal.get("version", 1)
    atomic_write(path, json.dumps(cal, indent=2, sort_keys=True) + "\n")
    forget_calibration()
    return {hw: cal["profiles"][hw] for hw in sorted(touched)}


MEASURED_KEYS = ("gpu", "profile", "method", "tokens_per_second", "flops_per_token", "mfu", "date", "versions")


def record_measured(entries: list[dict[str, Any]], path: str | Path | None = None) -> Path:
    """Add measured entries (one per GPU model × method × settings, from gpu_axolotl_check.py --record) to the
    calibration file's `measured` list; an entry for the same GPU, profile, method and settings is replaced."""
    path = Path(path or calibration_path())
    cal = json.loads(path.read_text()) if path.is_file() else {"version": 1, "profiles": {}}
    for e in entries:
        missing = [k for k in MEASURED_KEYS if e.get(k) in (None, "")]
        if missing:
            raise PlanError(f"measured entry for {e.get('method')!r} lacks {', '.join(missing)}")
        key = (e["gpu"], e["profile"], e["method"], json.dumps(e.get("settings"), sort_keys=True))
        cal["measured"] = [m for m in cal.get("measured", []) if (m.get("gpu"), m.get("profile"), m.get("method"),
                           json.dumps(m.get("settings"), sort_keys=True)) != key] + [e]
    atomic_write(path, json.dumps(cal, indent=2, sort_keys=True) + "\n")
    forget_calibration()
    return path
