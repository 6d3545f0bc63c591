"""Text views of a plan, a check and a calibration, for `ftstudy plan` (the JSON view is the dict itself).

Example:
    >>> from ftstudy.plan import estimate as planner
    >>> print(render_plan(planner.plan("dpo", "dpo", "h100")).splitlines()[0])
    plan: dpo × dpo on h100 (Qwen/Qwen2.5-7B: 7.616B params, 40.4M trainable)
"""
from __future__ import annotations

import json
from typing import Any

from ftstudy.core import tables

LABELS = {
    "weights": "weights", "trainable": "trainable (adapters)", "gradients": "gradients", "optimizer": "optimizer states",
    "reference_model": "DPO reference model", "activations": "activations", "logits": "logits + loss",
    "zero3_buffers": "ZeRO-3 gather buffers", "overhead": "framework overhead",
}


def _n(x: float) -> str:
    return f"{x / 1e9:.3f}B" if x >= 1e9 else f"{x / 1e6:.1f}M"


def _weights_label(st: dict) -> str:
    if st.get("load_in_4bit"):
        return "NF4 linears; embeddings, head, norms in 16 bits"
    return st["precision"]


def _where(p: dict[str, Any]) -> str:
    link = p.get("interconnect") or {}
    if link.get("gpus", 1) <= 1:
        return ""
    nodes = link.get("nodes", 1)
    return f", each of {link['gpus']} GPUs" + (f" on {nodes} nodes" if nodes > 1 else "")


def render_plan(p: dict[str, Any]) -> str:
    st, mem, toks, tp = p["settings"], p["memory_gb"], p["tokens"], p["throughput"]
    lines = [f"plan: {p['experiment']} × {p['method']} on {p['hardware']} ({p['base_model']}: "
             f"{_n(p['params']['total'])} params, {_n(p['params']['trainable'])} trainable)",
             f"settings: micro-batch {st['micro_batch_size']} × {st['sequence_len']} tokens"
             f" ({st['tokens_per_micro_batch']} per step{', pairs' if st['rl'] else ''}), grad-accum "
             f"{st['gradient_accumulation_steps']}, {st['optimizer']}, checkpointing "
             f"{st['gradient_checkpointing'] if isinstance(st['gradient_checkpointing'], str) else 'on' if st['gradient_checkpointing'] else 'off'}, loss {st['loss']}"
             + (f", {st['gpus']} GPUs ZeRO-{st['zero_stage']}" if st["gpus"] > 1 else ""), "",
             f"peak memory per GPU (GB){_where(p)}"]
    acts = p["activations_gb"]
    extra = {"weights": _weights_label(st), "optimizer": st["optimizer"], "reference_model": p["reference_model"],
             "activations": f"{acts['used'].replace('_', ' ')}; with {acts['with_checkpointing']:.2f},"
                            f" without {acts['without_checkpointing']:.2f}"}
    always = ("weights", "activations", "logits") + (("reference_model",) if st["rl"] else ())
    for key, label in LABELS.items():
        if mem[key] or key in always:  # zero items only where their absence says something
            lines.append(f"  {label:<24}{mem[key]:>9.2f}   {extra.get(key, '')}".rstrip())
    verdict = "fits" if p["fits"] else "DOES NOT FIT"
    lines.append(f"  {'total':<24}{mem['total']:>9.2f}   of {p['usable_gb']:g} usable: {verdict}")
    if p["fix"]:
        sets = " ".join(f"--set {k}={v if isinstance(v, str) else json.dumps(v)}"
                        for k, v in p["fix"]["set"].items())
        lines.append(f"  cheapest fix: {sets}  -> {p['fix']['memory_gb']:.2f} GB ({'; '.join(p['fix']['why'])})")
    elif not p["fits"]:
        lines.append("  no setting the planner knows makes it fit: more GPUs (h100x8, ZeRO-3), a smaller model"
                     " or a bigger machine")
    lines += ["", f"tokens ({toks['source']}): {toks['rows']:,} rows × {toks['mean_tokens_per_row']:,.0f} tokens/row"
                  f" × {toks['epochs']} epoch(s) = {toks['train_tokens'] / 1e6:,.1f}M; packing efficiency "
                  f"{toks['packing_efficiency']:.2f} -> {toks['processed_tokens'] / 1e6:,.1f}M processed"]
    rate = f"{tp['gpus']} × " if tp["gpus"] > 1 else ""
    speed = f" × {tp['method_speed']:g} (4-bit dequant)" if tp["method_speed"] != 1 else ""
    hours = f"{p['hours']:.1f} h" if p["hours"] is not None else "? h"
    plan_h = f"{p['plan_hours_text']} on {p['plan_hardware']}" if p.get("plan_hours_text") else "no figure in the plan"
    lines += [f"time: {p['flops_per_token'] / 1e9:.1f} GFLOP/token / ({rate}{tp['peak_tflops']:g} TFLOP/s × MFU "
              f"{tp['mfu']:g} [{tp['mfu_source']}]{speed}) = {tp['tokens_per_second']:,.0f} tokens/s -> {hours}"
              f"   (study plan: {plan_h})"]
    link = p.get("interconnect") or {}
    if link.get("gpus", 1) > 1:
        lines.append(f"interconnect: {link['gb_per_micro_batch']:.2f} GB per GPU per micro-batch over {link['link']}"
                     f" ({link['gb_per_s']:g} GB/s) = {link['hours']:.2f} h, counted in the time above (not overlapped)")
    if p.get("scaling"):
        lines.append("per-GPU memory as the job is sharded (same settings; " + ", ".join(
            f"{r['gpus']} GPU{'s' if r['gpus'] > 1 else ''}: {r['total_gb']:.1f} GB (states {r['sharded_states_gb']:.1f})"
            for r in p["scaling"]) + f"; ZeRO-{p['scaling'][-1]['zero_stage']} divides states by the GPUs)")
    lines += [f"note: {n}" for n in p["notes"]]
    if p.get("mde"):
        from ftstudy.plan import power

        st = next((r["mde"] for r in p["mde"] if r["mde"]), {"power": 0.8, "alpha": 0.05})
        lines += ["", f"minimum detectable effect per benchmark (paired test, {st['power']:.0%} power, alpha "
                      f"{st['alpha']:g}; ftstudy/plan/power.py):"]
        lines += power.lines(p["mde"])
    if p.get("speed_choices"):
        todo = not all(c["measured"] for c in p["speed_choices"])
        lines += ["", "speed choices (ftstudy/config/tuning.py" + ("; from the cited sources, not yet measured through Axolotl "
                                                           "on this hardware)" if todo else ")")]
        for c in p["speed_choices"]:
            sets = ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in c["set"].items())
            lines.append(f"  {sets}: {c['why']} [{c['source']}]")
    return "\n".join(lines)


def render_check(c: dict[str, Any]) -> str:
    rows = [[r["quantity"], f"{r['predicted']:,.2f}",
             f"{r['measured']:,.2f}" if r["measured"] is not None else "-",
             f"{r['error_pct']:+.1f}%" if r["error_pct"] is not None else "-",
             f"({r['kind']})" if r.get("kind") else ""] for r in c["rows"]]
    table = tables.text(["", "predicted", "measured", "error", ""], rows, widths=[20, 12, 12, 9], right=[1, 2, 3],
                        sep=["", "", "", "  "], rule=False)
    return "\n".join([f"check: {c['run']} ({c.get('experiment')} × {c.get('method')} on {c.get('hardware')})"]
                     + ["  " + line for line in table.splitlines()])


def render_calibration(profiles: dict[str, Any], path: str) -> str:
    lines = [f"calibrated {path}:"]
    for hw, prof in profiles.items():
        over = f", overhead {prof['overhead_gb']:g} GB" if "overhead_gb" in prof else ""
        lines.append(f"  {hw}: MFU {prof['mfu']:g}{over} from {len(prof['runs'])} run(s)")
    return "\n".join(lines)
