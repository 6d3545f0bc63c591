"""Stream a JSONL file through a converter on every core, with bounded memory and a reproducible selection.

Two passes over the input, neither of which holds the rows:
  1. (only when fewer rows are wanted than the file may have) count the rows and pick which to keep: the k
     line numbers with the smallest keyed BLAKE2b hash of (salt, line number). Memory is O(k) integers; the
     choice is the same on every run and machine, and a smaller k picks a subset of a larger k's rows.
  2. cut the file into ~1 MiB byte ranges that end on a newline (cheap: block reads and newline counts), and
     let a process pool read, parse, check and convert each range itself. Only offsets go to the workers and
     only finished output bytes come back, so the parent does little more than write; `imap` keeps the
     ranges in order, so the output order is the input order. Output goes to a temporary file that the
     caller renames into place only when the run is good.

Example:
    >>> from pathlib import Path
    >>> r = convert_file(Path("tests/fixtures/ag_news.jsonl"), Path("/tmp/ag.jsonl"), "ag_news", k=10, salt="42")
    >>> (r.rows_read, r.selected, r.converted)
    (64, 10, 10)
    >>> discard(r)
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ftstudy.core.fsio import temporary_for
from ftstudy.data.converters.common import convert
from ftstudy.data.row_errors import RowError, RowSkip
from ftstudy.data.selection import smallest

CHUNK_BYTES = 1 << 20  # per task: big enough to amortise the hand-off, small enough to stream and balance
MAX_EXAMPLES = 10      # malformed rows whose line and reason are kept for the report


@dataclass
class StreamResult:
    """What one pass did: counts, the first malformed rows (line, reason), skips by reason, and hashes."""

    rows_read: int = 0
    selected: int = 0
    converted: int = 0
    malformed: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)
    malformed_by_reason: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    input_sha256: str = ""
    output_sha256: str = ""
    tmp: Path | None = None


def select(path: Path, k: int, salt: str) -> set[int] | None:
    """Line numbers (1-based) of the k rows to keep, or None when the file has no more than k rows.

    Blank lines are not rows and are never selected.
    """
    def rows():
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield lineno

    chosen = smallest(rows(), k + 1, salt, digest="blake2b")  # a heap of k+1 line numbers: memory O(k)
    if len(chosen) <= k:
        return None
    return set(chosen[:k])  # smallest first, so these are the k smallest


def line_ranges(path: Path, digest=None) -> Iterator[tuple[int, int, int]]:
    """(start, end, first line number) of newline-aligned byte ranges covering the file; hashes it on the way."""
    start, lineno = 0, 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK_BYTES)
            if not block:
                break
            if not block.endswith(b"\n"):
                block += fh.readline()  # finish the current line so no row is split between ranges
            if digest is not None:
                digest.update(block)
            yield start, start + len(block), lineno
            start += len(block)
            lineno += block.count(b"\n")


def map_ranges(work: Callable, path: Path, workers: int | None, init: Callable, initargs: tuple,
               digest=None) -> Iterator:
    """`work(range)` for each line range of `path`, results in file order: in a process pool when there are
    several cores and ranges (fork where there is one: workers inherit `init`'s state instead of unpickling
    it), else here, since a pool would only add start-up time. Only offsets go to the workers."""
    workers = workers or default_workers()
    jobs = line_ranges(path, digest)
    if workers > 1 and path.stat().st_size > CHUNK_BYTES:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=init, initargs=initargs) as pool:
            yield from pool.imap(work, jobs)
    else:
        init(*initargs)
        yield from map(work, jobs)


_STATE: dict = {}


def _init(path: str, shape: str, keep: set[int] | None) -> None:
    _STATE.update(path=path, shape=shape, keep=keep)


def _convert_range(job: tuple[int, int, int]) -> tuple[bytes, int, int, int, list[tuple[int, str]], list[str]]:
    """Worker: convert the rows in one byte range. Returns (output bytes, rows, selected, converted, errors, skips)."""
    start, end, lineno = job
    shape, keep = _STATE["shape"], _STATE["keep"]
    with open(_STATE["path"], "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    out, errors, skips = [], [], []
    rows = selected = 0
    for raw in data.split(b"\n"):
        if raw.strip():
            rows += 1
            if keep is None or lineno in keep:
                selected += 1
                try:
                    try:
                        row = json.loads(raw)
                    except ValueError as exc:
                        raise RowError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
                    out.append(json.dumps(convert(shape, row), ensure_ascii=False))
                except RowError as exc:
                    errors.append((lineno, str(exc)))
                except RowSkip as exc:
                    skips.append(str(exc))
        lineno += 1
    text = ("\n".join(out) + "\n").encode() if out else b""
    return text, rows, selected, len(out), errors, skips


def default_workers() -> int:
    """The cores this process may use (the affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def convert_file(src: Path, dst: Path, shape: str, k: int | None = None, salt: str = "",
                 workers: int | None = None) -> StreamResult:
    """Convert `src` (JSONL hub rows of `shape`) into a temporary file beside `dst`; see the module docstring.

    The caller decides whether the run is good and then calls `commit(result, dst)` or `discard(result)`.
    """
    res = StreamResult()
    keep = select(src, k, salt) if k is not None else None
    dst.parent.mkdir(parents=True, exist_ok=True)
    res.tmp = temporary_for(dst)
    in_digest, out_digest = hashlib.sha256(), hashlib.sha256()
    try:
        with open(res.tmp, "wb") as out:
            _drain(map_ranges(_convert_range, src, workers, _init, (str(src), shape, keep), in_digest), out, out_digest, res)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        res.tmp.unlink(missing_ok=True)
        raise
    res.input_sha256, res.output_sha256 = in_digest.hexdigest(), out_digest.hexdigest()
    return res


def _drain(results, out, digest, res: StreamResult) -> None:
    for text, rows, selected, converted, errors, skips in results:
        out.write(text)
        digest.update(text)
        res.rows_read += rows
        res.selected += selected
        res.converted += converted
        res.malformed += len(errors)
        for lineno, reason in errors:
            res.malformed_by_reason[reason.split(" (")[0]] += 1
            if len(res.examples) < MAX_EXAMPLES:
                res.examples.append((lineno, reason))
        res.skipped.update(skips)


def commit(res: StreamResult, dst: Path) -> None:
    """Move the finished temporary file over `dst` (atomic: readers see the old file or the new one)."""
    assert res.tmp is not None
    res.tmp.replace(dst)
    res.tmp = None


def discard(res: StreamResult) -> None:
    """Remove the temporary output of a run that is not good."""
    if res.tmp is not None:
        res.tmp.unlink(missing_ok=True)
        res.tmp = None
