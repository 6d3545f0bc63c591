"""N-gram decontamination: find training rows that share a long n-gram with a benchmark item, and drop them.

The benchmark side is an index of hashed word n-grams (13 by default, as the GPT-3 and Llama papers and
open-instruct do): text is lowercased and split into `\\w+` words; every window of N words of every item field
becomes the hash of its tuple of word ids. A prompt field (PROMPT_KEYS) shorter than N words but at least
MIN_WORDS long (a short question such as TruthfulQA's) becomes one target of its own length, so short items
are found too; other short fields (an answer "Yes", a choice, a function call) recur in unrelated text and
are not evidence, so they are not indexed. Memory is bounded by the
benchmark side: one dict entry per distinct n-gram, plus the benchmark's vocabulary.

The training side streams: each row's string values are read one at a time, words outside the benchmark's
vocabulary become an id no target holds, and the row's windows are hashed and intersected with the index in C
(zip, map, set operations). Big files are cut into newline-aligned byte ranges scanned by a process pool, as prepare converts.

Python's tuple-of-int hash is deterministic across processes (only str/bytes hashing is salted), 64 bits wide:
a false match needs a hash collision, about one in 10^5 for 10^7 benchmark n-grams against 10^9 windows.

Example:
    >>> idx = Index(ngram=13)
    >>> n = idx.add("gsm8k", [{"question": "Natalia sold clips to 48 of her friends in April, and then she sold "
    ...                                 "half as many clips in May."}])
    >>> hits = idx.scan_row({"query": "Natalia sold clips to 48 of her friends in April, and then she sold half"})
    >>> [(h.bench, h.item) for h in hits]
    [('gsm8k', 0)]
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from itertools import repeat
from typing import Any, Iterable, Iterator

from ftstudy.core.fsio import temporary_for

DEFAULT_NGRAM = 13
MIN_WORDS = 8          # a field shorter than this (and than N) is not indexed: too common to be evidence
# Keys that hold an item's prompt: only these are indexed whole when shorter than N words (a short question is
# the item; a short answer, choice or function call recurs in unrelated rows). Longer text is indexed whatever
# its key.
PROMPT_KEYS = frozenset({"question", "query", "prompt", "instruction", "input", "inputs", "text", "turns", "problem",
                         "sentence", "context", "story", "article", "document", "goal", "ctx", "premise"})
EXAMPLES = 3           # contaminated rows kept as examples, per benchmark
WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Normalised words: lowercased `\\w+` runs (punctuation and spacing do not matter).

    Example:
        >>> words("Natalia sold 48 clips; then (in May) half as many!")
        ['natalia', 'sold', '48', 'clips', 'then', 'in', 'may', 'half', 'as', 'many']
    """
    return WORD.findall(text.lower())


def strings(value: Any, skip: frozenset[str] = frozenset(), key: str = "") -> Iterator[tuple[str, str]]:
    """(key, text) of every string inside a JSON value, depth first; a list item carries its list's key and
    keys in `skip` are left out.

    Example:
        >>> list(strings({"q": "a", "c": ["b", "c"], "id": "x"}, skip=frozenset({"id"})))
        [('q', 'a'), ('c', 'b'), ('c', 'c')]
    """
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from strings(v, skip, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, skip, key)


@dataclass(frozen=True)
class Hit:
    bench: str
    item: int          # position of the item in the benchmark's list
    text: str          # the shared n-gram, normalised


@dataclass
class Index:
    """Hashed n-grams of benchmark items; `scan_row` finds which items a training row shares one with."""

    ngram: int = DEFAULT_NGRAM
    vocab: dict[str, int] = field(default_factory=dict)
    targets: dict[int, Any] = field(default_factory=dict)    # hash -> code, or a tuple of codes (several benchmarks)
    lengths: set[int] = field(default_factory=set)             # window lengths to try (N and short-field lengths)
    benches: list[str] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)        # benchmark -> items indexed
    _names: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def min_words(self) -> int:
        return min(self.ngram, MIN_WORDS)

    def add(self, bench: str, items: Iterable[dict], skip: Iterable[str] = ()) -> int:
        """Index one benchmark's items (all their string values but the `skip` keys); returns how many."""
        if bench not in self.benches:
            self.benches.append(bench)
        b = self.benches.index(bench)
        skip = frozenset(skip)
        n = 0
        for i, item in enumerate(items):
            n += 1
            code = (b << 32) | i
            for key, text in strings(item, skip):
                ws = words(text)
                if len(ws) < self.ngram and (len(ws) < self.min_words or key not in PROMPT_KEYS):
                    continue
                ids = [self.vocab.setdefault(w, len(self.vocab)) for w in ws]
                if len(ids) >= self.ngram:
                    windows = (tuple(ids[j:j + self.ngram]) for j in range(len(ids) - self.ngram + 1))
                    self.lengths.add(self.ngram)
                else:
                    windows = (tuple(ids),)
                    self.lengths.add(len(ids))
                for w in windows:
                    self._put(hash(w), code)
        self.items[bench] = self.items.get(bench, 0) + n
        return n

    def _put(self, h: int, code: int) -> None:
        old = self.targets.get(h)
        if old is None:
            self.targets[h] = code
        elif isinstance(old, int):
            if old >> 32 != code >> 32:  # another benchmark holds it too: keep one item per benchmark
                self.targets[h] = (old, code)
        elif all(c >> 32 != code >> 32 for c in old):
            self.targets[h] = old + (code,)

    def scan_text(self, text: str, found: dict[int, tuple]) -> None:
        # Words outside the benchmark's vocabulary become -1, which no target contains, so a window holding one
        # cannot match (short of a hash collision). Windows are built, hashed and intersected with the targets
        # by C code (zip, map, set ops); only a row with a hit goes back to find which window it was.
        ws = words(text)
        if len(ws) < self.min_words:
            return
        ids = list(map(self.vocab.get, ws, repeat(-1, len(ws))))
        keys = self.targets.keys()
        for n in self.lengths:
            if len(ids) < n:
                continue
            common = keys & set(map(hash, zip(*[ids[k:] for k in range(n)])))
            if not common:
                continue
            for j in range(len(ids) - n + 1):
                win = tuple(ids[j:j + n])
                h = hash(win)
                if h in common:
                    code = self.targets[h]
                    for c in (code,) if isinstance(code, int) else code:
                        found.setdefault(c >> 32, (c & 0xFFFFFFFF, win))

    def scan_row(self, row: Any) -> list[Hit]:
        """The benchmarks (first matching item each) a training row shares an n-gram with."""
        found: dict[int, tuple] = {}
        if self.targets:
            for _, text in strings(row):
                self.scan_text(text, found)
        if not found:
            return []
        if len(self._names) != len(self.vocab):
            self._names = {i: w for w, i in self.vocab.items()}
        names = self._names
        return [Hit(self.benches[b], item, " ".join(names[i] for i in win)) for b, (item, win) in sorted(found.items())]


# ---- streaming a JSONL file --------------------------------------------------------------------------------

_STATE: dict = {}


def _init(path: str, index: "Index") -> None:
    _STATE.update(path=path, index=index)


def _scan_range(job: tuple[int, int, int]) -> tuple[int, list[tuple[int, list[Hit]]]]:
    start, end, lineno = job
    index: Index = _STATE["index"]
    with open(_STATE["path"], "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    rows, hits = 0, []
    for raw in data.split(b"\n"):
        if raw.strip():
            rows += 1
            try:
                row = json.loads(raw)
            except ValueError:
                row = raw.decode("utf-8", "replace")  # prepare reports malformed rows; scan the text anyway
            found = index.scan_row(row)
            if found:
                hits.append((lineno, found))
        lineno += 1
    return rows, hits


def scan_file(path: Path, index: Index, workers: int | None = None) -> tuple[int, dict[int, list[Hit]]]:
    """(rows scanned, {line number: hits}) for a JSONL file, on every core for files over 1 MiB."""
    from ftstudy.data.stream import map_ranges

    rows, out = 0, {}
    for n, hits in map_ranges(_scan_range, Path(path), workers, _init, (str(path), index)):
        rows += n
        out.update(hits)
    return rows, out


def drop_lines(path: Path, lines: set[int]) -> tuple[int, str]:
    """Rewrite `path` in place without the given (1-based) lines; returns (rows kept, sha256 of the new file)."""
    import hashlib

    digest, kept = hashlib.sha256(), 0
    tmp = temporary_for(path)
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            for lineno, line in enumerate(src, 1):
                if lineno not in lines:
                    dst.write(line)
                    digest.update(line)
                    kept += bool(line.strip())
            dst.flush()
            os.fsync(dst.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return kept, digest.hexdigest()


def tally(hits: dict[int, list[Hit]], source: str, benches: list[str]) -> dict[str, dict]:
    """Per benchmark: contaminated rows and a few examples (source, line, item, shared n-gram)."""
    out = {b: {"rows": 0, "examples": []} for b in benches}
    for lineno, found in sorted(hits.items()):
        for h in found:
            t = out.setdefault(h.bench, {"rows": 0, "examples": []})
            t["rows"] += 1
            if len(t["examples"]) < EXAMPLES:
                t["examples"].append({"source": source, "line": lineno, "item": h.item, "ngram": h.text})
    return out
