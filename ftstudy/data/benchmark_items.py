"""Where benchmark items come from and how they are read: by the harnesses (eval/), and by the data stage,
which stages them (stage_data.py), keeps the held-out xLAM rows out of training and checks training rows
against them (decontam/).

The public item sets of the judged and served benchmarks (SOURCES): each loads from, in order: `<data-dir>/<name>.jsonl` (or `.json`, a JSON array) in the source's own
row shape, when `--data-dir` is given (tests, offline GPU machines: `ftstudy stage-data DIR` writes exactly
these files on a connected machine); else its hub dataset through the eval environment's `datasets`; else its
file at the maintainers' pinned URL (FastChat's judge prompts and GPT-4 reference answers, which are not on
the hub).

Example:
    >>> SOURCES["mt_bench"].where().endswith("/fastchat/llm_judge/data/mt_bench/question.jsonl")
    True
    >>> SOURCES["mt_bench_judge_prompts"].where().startswith("https://raw.githubusercontent.com/lm-sys/FastChat/")
    True
    >>> len(heldout_ids(60000)), heldout_ids(10)
    (2000, [9])
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ftstudy.core import tool_envs as envs
from ftstudy.core import outbound, redact, runner
from ftstudy.core.bundled import evals_dir
from ftstudy.core.errors import UserError
from ftstudy.data.selection import smallest

# FastChat's llm_judge data at a fixed commit: the judge prompts and reference answers MT-Bench is graded with.
FASTCHAT_COMMIT = "0e6e7fdc78bf64aceea1508694ce4e6472810b8b"
FASTCHAT_RAW = f"https://raw.githubusercontent.com/lm-sys/FastChat/{FASTCHAT_COMMIT}/fastchat/llm_judge/data/"
MAX_DOWNLOAD = 64 * 1024 * 1024  # bytes; the largest of these files is a few MB
HUB = {  # the generative harnesses' tasks -> (hub id, config, split), for users without --data-dir
    "xlam_heldout": ("Salesforce/xlam-function-calling-60k", None, "train"),
    "cnn_dailymail": ("abisee/cnn_dailymail", "3.0.0", "test"),
    "xsum": ("EdinburghNLP/xsum", None, "test"),
}
# Held-out xLAM: the hub has only a train split, so the benchmark holds out `heldout_ids(len(train))`, row
# positions (equal to xLAM's `id`) that the training side drops from its training rows.
HELDOUT_SEED = 42       # the study seed of experiments.yaml: training and benchmark must use the same one
HELDOUT_MAX = 2000      # 60,000 xLAM rows - 2,000 held out = the 58,000 cap of the tool_use experiment
# The lm-eval task YAMLs that name where the code benchmarks' items live (decontam reads them; bigcode scores).
ITEM_TASKS = {"humaneval": "humaneval_local", "mbpp": "mbpp_local"}


class HarnessUnavailable(UserError, RuntimeError):
    """The harness (or its data) is not installed here; the message says how to get it."""


class ScoreInputError(UserError, ValueError):
    """An input file or record is unusable; the message names the file and line, or the item id."""


def load_jsonl(path: str | Path) -> list[dict]:
    """Read one JSON object per line (blank lines skipped). A file whose first character is `[` is read as
    one JSON array instead, since hub exports often come that way.

    Example:
        >>> load_jsonl("refs.jsonl")[0]["id"]  # doctest: +SKIP
        0
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreInputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise ScoreInputError(f"{path}: not valid JSON: {exc}") from None
        return [_object(row, f"{path}: item {i}") for i, row in enumerate(rows)]
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ScoreInputError(f"{path}:{lineno}: not valid JSON: {exc}") from None
        rows.append(_object(row, f"{path}:{lineno}"))
    return rows


def _object(row, where: str) -> dict:
    if not isinstance(row, dict):
        raise ScoreInputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


TOXIGEN_GROUPS = ['asian', 'bisexual', 'black', 'chinese', 'immigrant', 'jewish', 'latino', 'lgbtq', 'mental_disability', 'mexican', 'middle_east', 'muslim', 'native_american', 'physical_disability', 'trans', 'women']


@dataclass(frozen=True)
class Source:
    """One item set: a hub dataset (id, config, split) or a URL, and the number of items a full run scores."""

    hub: str | None = None
    config: str | None = None
    split: str = "test"
    url: str | None = None
    n_items: int | None = None
    shape: str = ""

    def where(self) -> str:
        if self.hub:
            return f"hub {self.hub}" + (f" [{self.config}]" if self.config else "") + f" (split {self.split})"
        return str(self.url)


SOURCES: dict[str, Source] = {
    # FastChat's own questions: its reference answers are keyed by question_id (HuggingFaceH4/mt_bench_prompts
    # renumbers them with hashed prompt_ids, which no reference joins)
    "mt_bench": Source(url=FASTCHAT_RAW + "mt_bench/question.jsonl", n_items=80,
                       shape="question_id (81-160), category, turns: [turn1, turn2]"),
    "mt_bench_reference": Source(url=FASTCHAT_RAW + "mt_bench/reference_answer/gpt-4.jsonl", n_items=30,
                                 shape="question_id, model_id, choices: [{turns: [..]}]"),
    "mt_bench_judge_prompts": Source(url=FASTCHAT_RAW + "judge_prompts.jsonl", n_items=8,
                                     shape="name, type, system_prompt, prompt_template, category, output_format"),
    "alpaca_eval": Source(url="https://huggingface.co/datasets/tatsu-lab/alpaca_eval/resolve/main/"
                              "alpaca_eval_gpt4_baseline.json", n_items=805,
                          shape="JSON array of {instruction, output, generator, dataset}"),
    "toxigen_prompts": Source(hub="toxigen/toxigen-data", config="prompts",
                              split=",".join(f"hate_{g}_1k" for g in TOXIGEN_GROUPS), n_items=16000,
                              shape="prompt (+ _split: the hub split it came from, added when staged)"),
    "writingprompts": Source(hub="euclaise/writingprompts", split="test", n_items=None,
                             shape="prompt ('[ WP ] ...'), story"),
}

# Loads hub split(s) and writes them as JSONL; run by the eval environment's Python (datasets lives there).
# Several comma-separated splits are concatenated, each row tagged with the split it came from (`_split`).
HUB_SCRIPT = ("import json, sys\nfrom datasets import load_dataset\nsplits = sys.argv[3].split(',')\n"
              "with open(sys.argv[4], 'w') as fh:\n    for split in splits:\n"
              "        for row in load_dataset(sys.argv[1], sys.argv[2] or None, split=split):\n"
              "            fh.write(json.dumps({**row, '_split': split} if len(splits) > 1 else row, default=str) + '\\n')\n")


def hub_argv(python: str | Path, src: Source, out: Path) -> list[str]:
    """The eval environment's command that writes one hub split as JSONL (pure; tests assert it).

    Example:
        >>> hub_argv("py", SOURCES["writingprompts"], Path("/t/wp.jsonl"))[3:]
        ['euclaise/writingprompts', '', 'test', '/t/wp.jsonl']
    """
    return [str(python), "-c", HUB_SCRIPT, str(src.hub), src.config or "", src.split, str(out)]


def local_file(data_dir: Path, name: str) -> Path | None:
    for suffix in (".jsonl", ".json"):
        path = Path(data_dir) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def download(url: str, out: Path, timeout: float = 600.0) -> None:
    """Fetch one file to `out` under core.outbound's policy (size cap, total deadline); one clear line when it
    cannot."""
    offline = "on a machine without network, stage it with `ftstudy stage-data DIR` elsewhere and pass --data-dir DIR"
    try:
        rep = outbound.request(url, timeout=timeout, max_bytes=MAX_DOWNLOAD)
    except (outbound.Unreachable, outbound.TimedOut) as exc:
        raise HarnessUnavailable(f"cannot download: {exc}; {offline}") from None
    except outbound.Refused as exc:
        raise HarnessUnavailable(str(exc)) from None
    if not 200 <= rep.status < 300:
        raise HarnessUnavailable(f"cannot download {redact.url(url)} (HTTP {rep.status}); {offline}")
    out.write_bytes(rep.body)


def fetch(name: str, out: Path, commands: list | None = None) -> None:
    """Write item set `name` to `out` from its source (hub through the eval environment, or URL)."""
    src = SOURCES[name]
    if src.hub:
        argv = hub_argv(envs.bin_path("eval"), src, out)
        if commands is not None:
            commands.append(argv)
        runner.check(runner.run(argv, quiet=True), f"loading {src.hub} from the hub")
    else:
        download(str(src.url), out)


def prompt_items(rows_: list[dict]) -> list[dict]:
    """WritingPrompts rows -> {id, instruction}: the prompt without its [ WP ]-style tag, ids by position.

    Example:
        >>> prompt_items([{"prompt": "[ WP ] A door opens.", "story": "..."}])
        [{'id': '0', 'instruction': 'A door opens.'}]
    """
    import re

    out = []
    for i, r in enumerate(rows_):
        text = re.sub(r"^\s*(\[\s*\w+\s*\]\s*)+", "", str(r.get("prompt") or "")).strip()
        if text:
            out.append({"id": str(r.get("id", i)), "instruction": text})
    return out


def rows(ctx, name: str) -> list[dict]:
    """The rows of item set `name` for a harness's BenchContext: `<data-dir>/<name>.jsonl` when --data-dir is
    given, else its source (the commands run are recorded in ctx.commands)."""
    if ctx.data_dir is not None:
        path = local_file(ctx.data_dir, name)
        if path is None:
            raise HarnessUnavailable(
                f"{Path(ctx.data_dir) / (name + '.jsonl')} not found: stage it (`ftstudy stage-data DIR` on a "
                f"connected machine writes it from {SOURCES[name].where()}), or leave out --data-dir to load it")
        return load_jsonl(path)
    with tempfile.TemporaryDirectory(prefix="ftstudy-items-") as tmp:
        out = Path(tmp) / f"{name}.jsonl"
        fetch(name, out, ctx.commands)
        return load_jsonl(out)


def heldout_ids(n_total: int, seed: int = HELDOUT_SEED) -> list[int]:
    """Positions of the xLAM train rows held out for the benchmark: a seeded hash ranking, so the same
    rows come out on every machine and Python version. The training side drops exactly these rows.

    Example:
        >>> len(heldout_ids(60000)), heldout_ids(60000) == heldout_ids(60000)
        (2000, True)
    """
    return sorted(smallest(range(n_total), min(HELDOUT_MAX, max(1, n_total // 30)), f"xlam-heldout:{seed}:"))


def heldout_rows(train_rows: list, seed: int = HELDOUT_SEED) -> list:
    """The held-out benchmark rows of the whole xLAM train split (`heldout_ids`, in file order)."""
    return [train_rows[i] for i in heldout_ids(len(train_rows), seed)]


def data_rows(task: str, data_dir: Path | None, commands: list) -> list[dict]:
    """A generative benchmark's rows: `<data_dir>/<task>.jsonl`, else its HUB split (the held-out rows only
    for xlam_heldout), loaded through the eval environment; the command is recorded in `commands`."""
    if data_dir is not None:
        path = Path(data_dir) / f"{task}.jsonl"
        if not path.exists():
            raise HarnessUnavailable(f"{path} not found: put the {task} rows there, or leave out --data-dir "
                                     f"to load {HUB.get(task, ('the hub dataset',))[0]} from the hub")
        return load_jsonl(path)
    if task not in HUB:
        raise HarnessUnavailable(f"no hub source known for task {task!r}; pass --data-dir with {task}.jsonl")
    with tempfile.TemporaryDirectory(prefix="ftstudy-hub-") as tmp:
        argv = hub_argv(envs.bin_path("eval"), Source(*HUB[task]), Path(tmp) / "rows.jsonl")
        commands.append(argv)
        runner.check(runner.run(argv, quiet=True), f"loading {HUB[task][0]} from the hub")
        rows = load_jsonl(Path(tmp) / "rows.jsonl")
    return heldout_rows(rows) if task == "xlam_heldout" else rows


def evals_items(bench: dict, key: str = "questions") -> list[dict]:
    """The rows of a bench's evals/ file (questions, probes), each with an id."""
    if not bench.get(key):
        raise HarnessUnavailable(f"benchmark {bench.get('id', bench.get('task'))!r} declares no {key!r} file")
    path = evals_dir() / bench[key]
    if not path.exists():
        raise HarnessUnavailable(f"{path} is missing; it ships with ftstudy (reinstall, or check the checkout)")
    rows = load_jsonl(path)
    for i, row in enumerate(rows):
        row.setdefault("id", str(i))
    return rows
