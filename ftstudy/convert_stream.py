"""Stream a JSONL file through a converter on every core, with bounded memory and a reproducible selection.

Two passes over the input, neither of which holds the rows:
  1. (only when fewer rows are wanted than the file has) count the rows and pick which to keep: the k line
     numbers with the smallest keyed BLAKE2b hash of (salt, line number). Memory is O(k) integers; the
     choice is the same on every run and machine, and a smaller k picks a subset of a larger k's rows.
  2. read the kept lines in chunks, parse + check + convert them in a process pool (`imap` keeps the chunk
     order, so the output order is the input order), and write the results to a temporary file that the
     caller renames into place only when the run is good.

Example:
    >>> from pathlib import Path
    >>> r = convert_file(Path("tests/fixtures/ag_news.jsonl"), Path("/tmp/ag.jsonl"), "ag_news", k=10, salt="42")
    >>> (r.rows_read, r.selected, r.converted)
    (64, 10, 10)
"""
from __future__ import annotations

import hashlib
import heapq
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ftstudy.convert import convert
from ftstudy.rows import RowError, RowSkip

CHUNK = 2000       # rows per task: large enough that pickling overhead is small, small enough to stream
MAX_EXAMPLES = 10  # malformed rows whose file:line:reason are kept for the report


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


def _key(salt: bytes, line: int) -> bytes:
    return hashlib.blake2b(line.to_bytes(8, "little"), digest_size=8, key=salt).digest()


def select(path: Path, k: int | None, salt: str) -> tuple[set[int] | None, int, str]:
    """Line numbers (1-based) of the k rows to keep, or None for all; plus the row count and the file's sha256.

    Blank lines are not rows and are never selected.
    """
    digest, count = hashlib.sha256(), [0]
    key = salt.encode()[:64] or b"-"

    def rows():
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                digest.update(line)
                if line.strip():
                    count[0] += 1
                    yield lineno

    # nsmallest keeps a heap of k line numbers: memory O(k) whatever the file's size.
    if k is None:
        for _ in rows():
            pass
        return None, count[0], digest.hexdigest()
    chosen = heapq.nsmallest(k, rows(), key=lambda ln: _key(key, ln))
    if k >= count[0]:
        return None, count[0], digest.hexdigest()
    return set(chosen), count[0], digest.hexdigest()


_SHAPE = ""


def _init(shape: str) -> None:
    global _SHAPE
    _SHAPE = shape


def _chunk(rows: list[tuple[int, bytes]]) -> tuple[bytes, int, list[tuple[int, str]], list[str]]:
    """Worker: convert one chunk; returns the output lines joined, the count, errors (line, reason), skips."""
    out, errors, skips = [], [], []
    for lineno, raw in rows:
        try:
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise RowError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
            out.append(json.dumps(convert(_SHAPE, row), ensure_ascii=False))
        except RowError as exc:
            errors.append((lineno, str(exc)))
        except RowSkip as exc:
            skips.append(str(exc))
    text = ("\n".join(out) + "\n").encode() if out else b""
    return text, len(out), errors, skips


def _chunks(path: Path, keep: set[int] | None, res: StreamResult, hash_input: bool):
    digest = hashlib.sha256() if hash_input else None
    batch: list[tuple[int, bytes]] = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if digest:
                digest.update(line)
            if not line.strip():
                continue
            if hash_input:
                res.rows_read += 1
            if keep is not None and lineno not in keep:
                continue
            batch.append((lineno, line))
            if len(batch) == CHUNK:
                yield batch
                batch = []
    if batch:
        yield batch
    if digest:
        res.input_sha256 = digest.hexdigest()


def default_workers() -> int:
    """The cores this process may use (the affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def convert_file(src: Path, dst: Path, shape: str, k: int | None = None, salt: str = "",
                 workers: int | None = None) -> StreamResult:
    """Convert `src` (JSONL hub rows of `shape`) into a temporary file beside `dst`; see the module docstring.

    The caller decides whether the run is good and then calls `commit(result, dst)` or `discard(result)`;
    the doctest above commits nothing, so /tmp/ag.jsonl is left untouched.
    """
    res = StreamResult()
    keep, n, sha = select(src, k, salt) if k is not None else (None, 0, "")
    if k is not None:
        res.rows_read, res.input_sha256 = n, sha
    res.selected = len(keep) if keep is not None else (n if k is not None else 0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    res.tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    out_digest = hashlib.sha256()
    workers = workers or default_workers()
    chunks = _chunks(src, keep, res, hash_input=k is None)
    try:
        with open(res.tmp, "wb") as out:
            if workers > 1:
                # fork keeps start-up cheap on Linux; spawn is the fallback where fork is unavailable.
                ctx = get_context("fork" if "fork" in _methods() else "spawn")
                with ctx.Pool(workers, initializer=_init, initargs=(shape,)) as pool:
                    _drain(pool.imap(_chunk, chunks), out, out_digest, res)
            else:
                _init(shape)
                _drain(map(_chunk, chunks), out, out_digest, res)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        res.tmp.unlink(missing_ok=True)
        raise
    if k is None:
        res.selected = res.rows_read
    res.output_sha256 = out_digest.hexdigest()
    return res


def _methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _drain(results, out, digest, res: StreamResult) -> None:
    for text, count, errors, skips in results:
        out.write(text)
        digest.update(text)
        res.converted += count
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
    if res.tmp is not None:
        res.tmp.unlink(missing_ok=True)
        res.tmp = None
