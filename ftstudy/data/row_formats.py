"""Training-data row shapes: what each hub source's rows hold, and how they reach Axolotl.

A shape either keeps its hub fields and names an Axolotl built-in dataset type that reads them (a field map,
`alpaca`, `chatml.ultra`), or names a converter in ftstudy/data/converters/common.py that rewrites rows into chat
`messages` (and `tools`) read by Axolotl's `chat_template` type. Both kinds are written by `ftstudy prepare`
as JSONL under data/prepared/<experiment>/, with the mixture's cap and seed applied.
"""
from __future__ import annotations

from typing import Any

# A ChatML prompt for field-mapped sources, so that a model trained on them answers the same chat-formatted
# prompts the benchmarks send with --apply_chat_template.
CHATML_PROMPT = "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"
CHATML_PROMPT_INPUT = "<|im_start|>user\n{instruction}\n\n{input}<|im_end|>\n<|im_start|>assistant\n"

CHAT_ROWS: dict[str, Any] = {
    "type": "chat_template",
    "field_messages": "messages",
    "message_property_mappings": {"role": "role", "content": "content"},
    "roles_to_train": ["assistant"],
}


def field_map(instruction: str, output: str, input_field: str | None = None) -> dict[str, Any]:
    """Axolotl's user-defined instruction format (`type:` as a mapping) for a source's own field names."""
    t: dict[str, Any] = {"field_instruction": instruction, "field_output": output}
    if input_field:
        t["field_input"] = input_field
    t["format"] = CHATML_PROMPT_INPUT if input_field else CHATML_PROMPT
    t["no_input_format"] = CHATML_PROMPT
    return {"type": t}


# shape -> required hub fields, and how prepared rows are read by Axolotl. `convert` names the converter in
# ftstudy/data/converters/common.py ("keep" writes the hub row unchanged).
SHAPES: dict[str, dict[str, Any]] = {
    "ag_news": {"fields": ["text", "label"], "convert": "ag_news", "axolotl": CHAT_ROWS},
    "flan": {"fields": ["inputs", "targets"], "convert": "keep", "axolotl": field_map("inputs", "targets")},
    "openorca": {"fields": ["question", "response"], "convert": "openorca", "axolotl": CHAT_ROWS},
    "ultrachat": {"fields": ["data"], "convert": "ultrachat", "axolotl": CHAT_ROWS},
    "magicoder": {"fields": ["problem", "solution"], "convert": "keep", "axolotl": field_map("problem", "solution")},
    "metamath": {"fields": ["query", "response"], "convert": "keep", "axolotl": field_map("query", "response")},
    "gsm8k": {"fields": ["question", "answer"], "convert": "keep", "axolotl": field_map("question", "answer")},
    "alpaca": {"fields": ["instruction", "output"], "convert": "keep", "axolotl": {"type": "alpaca"}},
    "pubmedqa": {"fields": ["question", "context", "final_decision"], "convert": "pubmedqa", "axolotl": CHAT_ROWS},
    "casehold": {"fields": ["context", "endings", "label"], "convert": "casehold", "axolotl": CHAT_ROWS},
    "legalbench": {"fields": ["text", "answer"], "convert": "keep", "axolotl": field_map("text", "answer")},
    "ultrafeedback_binarized": {
        "fields": ["prompt", "chosen", "rejected"],
        "convert": "keep",
        "axolotl": {"type": "chatml.ultra"},
    },
    "ultrafeedback_raw": {
        "fields": ["instruction", "completions"],
        "convert": "ultrafeedback_raw",
        "axolotl": {"type": "chatml.ultra"},
    },
    "xlam": {
        "fields": ["query", "tools", "answers"],
        "convert": "xlam",
        "axolotl": {**CHAT_ROWS, "field_tools": "tools"},
    },
    "cnn_dailymail": {"fields": ["article", "highlights"], "convert": "keep", "axolotl": field_map("article", "highlights")},
    "xsum": {"fields": ["document", "summary"], "convert": "keep", "axolotl": field_map("document", "summary")},
    "writingprompts": {"fields": ["prompt", "story"], "convert": "writingprompts", "axolotl": CHAT_ROWS},
    # The plan's further sources (converters in ftstudy/data/converters/plan_sources.py).
    "sharegpt": {"fields": ["conversations"], "convert": "sharegpt", "axolotl": CHAT_ROWS},
    "wildchat": {"fields": ["conversation"], "convert": "wildchat", "axolotl": CHAT_ROWS},
    "starcoder": {"fields": ["content"], "convert": "starcoder", "axolotl": {"type": "completion", "field": "text"}},
    "hendrycks_math": {"fields": ["problem", "solution"], "convert": "hendrycks_math", "axolotl": CHAT_ROWS},
    "nectar": {"fields": ["prompt", "answers"], "convert": "nectar", "axolotl": {"type": "chatml.ultra"}},
    "toolbench": {"fields": ["conversations"], "convert": "toolbench", "axolotl": CHAT_ROWS},
    "gorilla": {"fields": ["code"], "convert": "gorilla", "axolotl": CHAT_ROWS},
    "booksum": {"fields": ["chapter", "summary_text"], "convert": "booksum", "axolotl": CHAT_ROWS},
    "legalbench_task": {"fields": ["text", "answer"], "convert": "legalbench_task", "axolotl": CHAT_ROWS},
    "cuad": {"fields": ["context", "question", "answers"], "convert": "cuad", "axolotl": CHAT_ROWS},
    "tinystories": {"fields": ["text"], "convert": "tinystories", "axolotl": CHAT_ROWS},
}
