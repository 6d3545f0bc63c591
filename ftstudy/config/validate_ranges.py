"""ftstudy's own range rules for numeric hyperparameters: a table of key -> allowed interval, checked by
`validate` and by `plan` (whose `--set` values never meet the schema).

Axolotl 0.19.0's schema types these keys but bounds none of them, so it accepts `learning_rate: .nan`,
`num_epochs: -3` or `lora_r: 0`; what happens next is a crash when training starts (torch's AdamW, peft), a run
that trains nothing, or a plan with negative hours. These rules are ftstudy's, not Axolotl's: every message
says so, and names what refuses the value later when something does. They are kept apart from
Axolotl's own verdict (axolotl_verdict.py), and only bound values Axolotl's examples never use.

Example:
    >>> print(range_problems({"learning_rate": float("nan"), "num_epochs": 3})[0].render())
    learning_rate: nan is outside (0, 100]: the optimizer's step size (ftstudy's range rule, Axolotl accepts it; torch's AdamW refuses a negative or NaN one when training starts) (set a finite number in (0, 100], e.g. 0.0002)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ftstudy.config.validate_schema import Problem

BIG = 2**31 - 1  # a count past this is a typo; it also keeps every count a planner float can hold


@dataclass(frozen=True)
class Range:
    """An interval in the usual notation ("(0, 100]"; "inf": no upper bound, values still finite), what the
    key means, an example value, and what refuses a value outside it later (None: nothing; ftstudy's rule)."""

    interval: str
    why: str
    example: str
    refused_later_by: str | None = None

    def bounds(self) -> tuple[float, bool, float, bool]:
        m = re.fullmatch(r"([\[(])(.+), (.+)([\])])", self.interval)
        assert m, self.interval
        return float(m[2]), m[1] == "(", float(m[3]), m[4] == ")"

    def holds(self, x: float) -> bool:
        low, low_open, high, high_open = self.bounds()
        finite = isinstance(x, int) or math.isfinite(x)  # an int is finite, and may be too big for a float
        return finite and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)


COUNT = f"[1, {BIG}]"
ADAMW = "torch's AdamW refuses it when training starts"
RANGES: dict[str, Range] = {
    "learning_rate": Range("(0, 100]", "the optimizer's step size", "0.0002",
                           "torch's AdamW refuses a negative or NaN one when training starts"),
    "num_epochs": Range("(0, 10000]", "passes over the training data", "3"),
    "max_steps": Range(COUNT, "optimizer steps (leave it unset for no limit)", "1000"),
    "micro_batch_size": Range(COUNT, "sequences per GPU per step", "2"),
    "gradient_accumulation_steps": Range(COUNT, "micro-batches per optimizer step", "8"),
    "batch_size": Range(COUNT, "sequences per optimizer step", "16"),
    "eval_batch_size": Range(COUNT, "sequences per GPU per eval step", "2"),
    "sequence_len": Range(COUNT, "tokens per sequence", "2048"),
    "max_prompt_len": Range(COUNT, "tokens of a preference prompt", "512"),
    "eval_max_new_tokens": Range(COUNT, "tokens generated per eval prompt", "128"),
    "lora_r": Range(COUNT, "the adapter's rank", "16", "peft refuses a rank below 1 when it builds the adapter"),
    "lora_alpha": Range(f"(0, {BIG}]", "the adapter's scale (alpha / r): 0 switches it off, below 0 flips it", "32"),
    "lora_dropout": Range("[0, 1)", "the share of the adapter's input dropped (1 drops all of it)", "0.05",
                          "torch refuses a probability outside [0, 1]"),
    "warmup_steps": Range(f"[0, {BIG}]", "steps of learning-rate warm-up", "10"),
    "warmup_ratio": Range("[0, 1]", "the share of steps spent warming up", "0.03"),
    "weight_decay": Range("[0, inf)", "decoupled weight decay", "0.01", ADAMW),
    "max_grad_norm": Range("[0, inf)", "gradient clipping norm (0: none)", "1.0"),
    "adam_beta1": Range("[0, 1)", "Adam's first-moment decay", "0.9", ADAMW),
    "adam_beta2": Range("[0, 1)", "Adam's second-moment decay", "0.999", ADAMW),
    "adam_epsilon": Range("[0, inf)", "Adam's denominator term", "1e-08", ADAMW),
    "eval_steps": Range(f"(0, {BIG}]", "steps between evals (below 1: a share of all steps)", "100"),
    "save_steps": Range(f"(0, {BIG}]", "steps between checkpoints (below 1: a share of all steps)", "100"),
    "logging_steps": Range(COUNT, "steps between log lines", "10"),
    "saves_per_epoch": Range(COUNT, "checkpoints per epoch", "1"),
    "evals_per_epoch": Range(f"[0, {BIG}]", "evals per epoch", "1"),
    "save_total_limit": Range(COUNT, "checkpoints kept", "2"),
    "early_stopping_patience": Range(COUNT, "evals without improvement before stopping", "3"),
    "val_set_size": Range("[0, inf)", "held-out rows (below 1: a share of the rows)", "0.05"),
    "cosine_min_lr_ratio": Range("[0, 1]", "the last learning rate as a share of the peak", "0.1"),
    "cosine_constant_lr_ratio": Range("[0, 1]", "the share of steps before the minimum learning rate", "0.8"),
    "neftune_noise_alpha": Range("(0, 1000]", "NEFTune's embedding noise", "5"),
    "rl_beta": Range("(0, inf)", "the preference loss's temperature", "0.1"),
    "dpo_beta": Range("(0, inf)", "DPO's temperature", "0.1"),
    "loraplus_lr_ratio": Range("(0, inf)", "LoRA+'s learning-rate ratio of B to A", "16"),
    "lr_div_factor": Range("(0, inf)", "the one-cycle schedule's initial divisor", "25"),
    "dataloader_num_workers": Range("[0, 1024]", "data-loading processes", "2"),
    "seed": Range(f"[0, {2**32 - 1}]", "the random seed", "42", "numpy refuses a seed outside [0, 2**32 - 1]"),
}


def number(value: Any) -> float | int | None:
    """The number a config value stands for (a numeric string too, as Axolotl reads learning_rate "2e-4");
    None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def range_problems(cfg: dict, require_numbers: bool = False) -> list[Problem]:
    """One Problem per top-level key of RANGES whose value is a number outside its interval; with
    require_numbers (`plan`, whose values meet no schema) also one per value that is not a number. A bool is
    left alone: Axolotl's pydantic reads it as 0 or 1 where an integer is expected, and so does the planner."""
    out = []
    for key, rule in RANGES.items():
        value = cfg.get(key)
        if value is None or isinstance(value, bool):
            continue
        x = number(value)
        if x is None and not require_numbers:  # the schema reports a value of the wrong type
            continue
        shown = repr(value) if x is None or isinstance(value, str) else _short(x)
        if x is not None and rule.holds(x):
            continue
        if x is None:
            message = f"{shown} is not a number: {rule.why}"
        else:
            later = f"; {rule.refused_later_by}" if rule.refused_later_by else ""
            message = f"{shown} is outside {rule.interval}: {rule.why} (ftstudy's range rule, Axolotl accepts it{later})"
        out.append(Problem(key, message, f"set a finite number in {rule.interval}, e.g. {rule.example}"))
    return out


def _short(x: float | int) -> str:
    if isinstance(x, int) and x.bit_length() > 64:  # str() of a huge int is slow, and refused past 4,300 digits
        return f"a {x.bit_length() * 3 // 10}-digit number"
    return repr(x)
