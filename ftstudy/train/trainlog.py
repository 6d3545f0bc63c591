"""Read figures from the trainer's output as it streams: step, loss, ETA, tokens, final metrics.

The HF Trainer under Axolotl prints its log dicts (`{'loss': 2.31, 'grad_norm': ..., 'epoch': 0.4}`), a tqdm
bar (`12/30 [00:05<00:07, ...]`), and Axolotl prints token counts while it prepares data
(`total_num_tokens: 10234`). Nothing here depends on a particular version's wording beyond those shapes.

Example:
    >>> p = LogParser(total=10, start_step=3)
    >>> p.feed(" 40%|####      | 4/10 [00:02<00:03,  1.9it/s]"); p.feed("{'loss': '2.5', 'epoch': '0.4'}")
    >>> p.figures()["loss_curve"]
    [(4, 2.5)]
"""
from __future__ import annotations

import ast
import re
import time
from typing import Any, Callable

BAR = re.compile(r"(\d+)/(\d+) \[([\d:]+)<([\d:?]+)")
TOKENS = re.compile(r"\b(total_num_tokens|total_supervised_tokens)\W+(\d+)")


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v  # inf/nan are kept: a diverged loss must show in train.json, not vanish


class LogParser:
    def __init__(self, on_progress: Callable[[str], None] | None = None, every_s: float = 2.0,
                 total: int | None = None, logging_steps: int = 1, start_step: int = 0):
        self.on_progress, self.every_s = on_progress, every_s
        self.logging_steps, self.start_step = logging_steps, start_step
        self.step = start_step
        self.total: int | None = total
        self._fixed_total = total is not None
        self.eta = "?"
        self.losses: list[tuple[int, float]] = []
        self.final: dict[str, float] = {}
        self.tokens: dict[str, int] = {}
        self._last = 0.0

    def feed(self, line: str) -> None:
        m = BAR.search(line)
        # Only the training bar counts: its total is the max_steps we asked for, or (epoch-based runs) the bar
        # that runs once losses are being logged. Tokenizing, packing and saving draw bars of their own.
        if m and ((self._fixed_total and int(m.group(2)) == self.total) or (not self._fixed_total and self.losses)):
            self.step, self.total, self.eta = int(m.group(1)), int(m.group(2)), m.group(4)
        for name, value in TOKENS.findall(line):
            self.tokens[name] = int(value)
        start = line.find("{")
        if start >= 0 and line.rstrip().endswith("}") and ("loss" in line or "train_runtime" in line):
            try:
                logs = ast.literal_eval(line[start:].strip())
            except (ValueError, SyntaxError):
                logs = None
            if isinstance(logs, dict):
                self._logs(logs)
        self._report()

    def _logs(self, logs: dict) -> None:
        if "train_runtime" in logs:
            self.final = {k: v for k, v in ((k, _num(v)) for k, v in logs.items()) if v is not None}
        elif "loss" in logs and _num(logs["loss"]) is not None:
            # the k-th loss log of this attempt is optimizer step start + k × logging_steps
            step = self.start_step + (len(self.losses) + 1) * self.logging_steps
            self.losses.append((step, _num(logs["loss"])))
            self.step = max(self.step, step)
            gib = _num(logs.get("memory/max_allocated (GiB)"))
            if gib:  # Axolotl's own CUDA allocator peak: exact, where nvidia-smi sampling can miss a peak
                self.tokens["gpu_peak_gb"] = max(self.tokens.get("gpu_peak_gb", 0), gib * 2**30 / 1e9)
            if _num(logs.get("tokens/total")) is not None:
                self.tokens["tokens_total"] = int(_num(logs["tokens/total"]))

    def _report(self) -> None:
        now = time.time()
        if not self.on_progress or not self.total or now - self._last < self.every_s:
            return
        self._last = now
        loss = f"{self.losses[-1][1]:.4f}" if self.losses else "-"
        self.on_progress(f"step {self.step}/{self.total}  loss {loss}  eta {self.eta}")

    def figures(self) -> dict[str, Any]:
        """train.json figures: loss curve, steps, runtime, tokens and tokens/s."""
        runtime = self.final.get("train_runtime")
        steps = self.step or (self.losses[-1][0] if self.losses else 0)
        out: dict[str, Any] = {
            "loss_curve": self.losses,
            "steps": steps,
            "total_steps": self.total,
            "train_runtime_s": runtime,
            "train_loss": self.final.get("train_loss"),
            "samples_per_second": self.final.get("train_samples_per_second"),
            "tokens_per_epoch": self.tokens.get("total_num_tokens"),
            "supervised_tokens_per_epoch": self.tokens.get("total_supervised_tokens"),
            "gpu_peak_allocated_gb": round(self.tokens["gpu_peak_gb"], 3) if self.tokens.get("gpu_peak_gb") else None,
        }
        # Axolotl logs the running count of tokens seen (`tokens/total`); divided by the trainer's own runtime
        # it is tokens/s without start-up and data preparation.
        if runtime and self.tokens.get("tokens_total"):
            out["tokens_trained"] = self.tokens["tokens_total"]
            out["tokens_per_second"] = round(self.tokens["tokens_total"] / runtime, 2)
        return out


def history(checkpoint) -> list[tuple[int, float]]:
    """The loss curve recorded in a checkpoint's trainer_state.json (it carries the resumed steps too)."""
    import json
    from pathlib import Path

    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return [(int(h["step"]), float(h["loss"])) for h in state.get("log_history", []) if "loss" in h and "step" in h]
