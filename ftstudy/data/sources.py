"""How a training source's rows are read (`local_input`: a local file, or the hub streamed once into
data/raw/), and what a user must know or do to get them.

`hub_request` builds the arguments of tool_env_scripts/hub_rows.py (configs read in turn, a repo folder or file, a
revision, and for very large sources a stop after `cap` rows) with the cache key prepare keeps beside the dump.
`access_lines` is what `ftstudy show` prints; `local_only` and `hub_failure` are the errors prepare gives when a
source cannot come from the hub as is.

Example:
    >>> from ftstudy.config import registry
    >>> args, _ = hub_request(registry.experiment("code").select(["starcoderdata"])[0], "bigcode/starcoderdata")
    >>> args
    ['--hub', 'bigcode/starcoderdata', '--split', 'train', '--data-dir', 'python', '--limit', '500000']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ftstudy.config import registry
from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.core.fsio import atomic_write, read_json, write_json
from ftstudy.core.runner import ToolError

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".txt")
HUB_PAGE = "https://huggingface.co/datasets/{hub}"
WHAT_TO_DO = {
    "gated": "accept the terms on {page} (logged in), then set HF_TOKEN to a token of that account",
    "licence": "read the licence on {page} before using the data",
    "very large": "ftstudy reads the first {cap} rows in hub order; for another slice pass --data with a local file",
    "not on the hub": "get the file as the note says and pass it with --data PATH",
}


def hub_request(src: registry.Source, hub: str) -> tuple[list[str], dict[str, Any]]:
    """hub_rows.py arguments for one source read from `hub`, and the key that says the cached dump is current.

    The source's own config(s), folder, file and revision apply only to its own hub id; another id (a user's
    --data owner/name) gets its train split as is.
    """
    own = hub == src.hub
    configs = (src.configs or ([src.config] if src.config else [])) if own else []
    split = src.split if own else "train"
    args = ["--hub", hub, "--split", split]
    for c in configs:
        args += ["--config", c]
    want: dict[str, Any] = {"hub": hub, "config": src.config if own else None, "split": split}
    if own:
        for flag, value in (("--data-dir", src.data_dir), ("--data-files", src.data_files), ("--revision", src.revision)):
            if value:
                args += [flag, value]
                want[flag.lstrip("-").replace("-", "_")] = value
        if src.configs:
            want["configs"] = list(src.configs)
        if "very large" in src.access and src.cap:
            args += ["--limit", str(src.cap)]
            want["limit"] = src.cap
    return args, want


def access_lines(src: registry.Source) -> list[str]:
    """What `show` says about a source that is gated, licence-restricted, very large or not on the hub."""
    out = []
    if src.access:
        page = HUB_PAGE.format(hub=src.hub)
        todo = "; ".join(WHAT_TO_DO[a].format(page=page, cap=f"{src.cap:,}" if src.cap else "all") for a in src.access)
        out.append(f"access: {', '.join(src.access)} -- {todo}")
    if src.note:
        out.append(f"note: {src.note.strip()}")
    return out


def local_only(src: registry.Source) -> str:
    """The error for a source that is not on the hub and was given no --data."""
    return (f"source {src.id!r} ({src.hub}) is not on the hub: {src.note.strip()} "
            f"Example: ftstudy prepare EXP --source {src.id} --data PATH")


def hub_failure(src: registry.Source, hub: str, error: str) -> str:
    """prepare's error when the hub dump failed: the tool's own message, then what to do about it."""
    page = HUB_PAGE.format(hub=hub)
    steps = []
    if "gated" in src.access or hub != src.hub:
        steps.append(f"if the hub refused access, accept the terms on {page} and set HF_TOKEN")
    else:
        steps.append(f"if the hub refused access, check {page} (a gated or renamed dataset needs HF_TOKEN / a new id)")
    steps.append("without network or to use a copy, pass --data with a local JSONL/JSON/parquet file in the hub's row shape")
    if src.note and hub == src.hub:
        steps.append(f"note on {src.id}: {src.note.strip()}")
    return f"{error}\nWhat to do: " + "; ".join(steps) + "."


class PrepareError(RuntimeError):
    """Prepare cannot produce a good training set; the message says which rows and what to do."""


def _train_tool(script: str, args: list[str], what: str) -> None:
    from ftstudy.core import tool_envs as envs
    from ftstudy.core.runner import check, run

    argv = [str(envs.bin_path("train")), str(TOOL_SCRIPTS / script), *args]
    check(run(argv, quiet=True), what)


def local_input(src: registry.Source, spec: str | None, raw: Path, progress: Callable[[str], None]) -> tuple[Path, dict]:
    """A local JSONL file holding the source's rows, and how the manifest names the input.

    JSONL is read in place; a JSON array and parquet are rewritten to JSONL under data/raw/ first; a hub
    dataset is streamed there once (tool_env_scripts/hub_rows.py in the train environment) and reused afterwards.
    """
    if spec and Path(spec).is_file():
        path = Path(spec)
        if path.suffix == ".parquet":
            progress(f"  reading parquet {path} (train environment)")
            _train_tool("hub_rows.py", ["--parquet", str(path), "--out", str(raw)], f"reading {path}")
            return raw, {"path": spec}
        if path.suffix == ".json" and _starts_array(path):
            rows = json.loads(path.read_text())  # a JSON array has to be parsed whole; JSONL streams
            atomic_write(raw, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            return raw, {"path": spec}
        return path, {"path": spec}
    hub = spec or src.hub
    if spec and (spec.count("/") != 1 or spec.startswith((".", "/", "~")) or spec.endswith(FILE_SUFFIXES)):
        raise PrepareError(f"--data {spec!r}: no such file, and not a hub dataset id (owner/name)")
    if hub == src.hub and "not on the hub" in src.access:
        raise PrepareError(local_only(src))
    # The experiment's own config(s)/split apply only to its own hub id; another id gets its train split.
    args, want = hub_request(src, hub)
    meta = raw.with_name(raw.name + ".source.json")
    if not (raw.is_file() and meta.is_file() and read_json(meta) == want):
        config = ",".join(want.get("configs") or []) or want["config"] or "default"
        progress(f"  streaming {hub} ({config}/{want['split']}) from the hub into {raw}")
        try:
            _train_tool("hub_rows.py", args + ["--out", str(raw)], f"streaming {hub} from the hub")
        except ToolError as exc:
            raise PrepareError(hub_failure(src, hub, str(exc))) from None
        if src.shape == "xlam" and hub == src.hub:
            drop_heldout(raw, progress)
        write_json(meta, want)
    return raw, want


def drop_heldout(raw: Path, progress: Callable[[str], None]) -> None:
    """Benchmark items never enter training: the xLAM rows `ftstudy bench` holds out (by position, the same
    seeded ranking, ftstudy.data.benchmark_items.heldout_ids) are removed from the hub dump before conversion."""
    from ftstudy.data.benchmark_items import heldout_ids

    with open(raw, "rb") as fh:
        n = sum(1 for _ in fh)
    held = set(heldout_ids(n))
    tmp = raw.with_name(raw.name + ".tmp")
    with open(raw, "rb") as src, open(tmp, "wb") as dst:
        for i, line in enumerate(src):
            if i not in held:
                dst.write(line)
    tmp.replace(raw)
    progress(f"  held out {len(held)} of {n} rows for the xlam_toolcall benchmark")


def _starts_array(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4096).lstrip()[:1] == b"["
