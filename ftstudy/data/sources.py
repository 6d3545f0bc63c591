"""How a training source is fetched from the hub, and what a user must know or do to get it.

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

from typing import Any

from ftstudy.config import registry

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
