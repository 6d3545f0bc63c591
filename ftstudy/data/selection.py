"""The one seeded selection: the k items whose hash of (salt, item) is smallest. The same salt picks the same
items on every machine and Python version, whatever the input order, and a smaller k picks a subset of a
larger k's items; a heap keeps memory at O(k), so a stream of millions of rows can be cut without holding it.

Used for: the rows `prepare` keeps of a source (keyed BLAKE2b of the line number, data/stream.py), the
held-out xLAM rows (data/benchmark_items.py), a benchmark's --limit subset and `max_items` cap
(eval/harness/__init__.py). Each keeps the hash it has always used, so the rows and ids chosen never move.

Example:
    >>> smallest(range(10), 3, "salt:")
    [5, 7, 6]
    >>> smallest(["b", "a", "c"], 2, "1:") == smallest(["c", "b", "a"], 2, "1:")
    True
"""
from __future__ import annotations

import hashlib
import heapq
from typing import Iterable, TypeVar

T = TypeVar("T")


def smallest(items: Iterable[T], k: int, salt: str, digest: str = "sha256") -> list[T]:
    """The k items with the smallest hash, smallest first. `sha256`: SHA-256 of f"{salt}{item}"; `blake2b`:
    BLAKE2b keyed by the salt (its first 64 bytes) of the item, an int, as 8 little-endian bytes."""
    if digest == "blake2b":
        key = salt.encode()[:64] or b"-"

        def rank(item):
            return hashlib.blake2b(item.to_bytes(8, "little"), digest_size=8, key=key).digest()
    else:
        def rank(item):
            return hashlib.sha256(f"{salt}{item}".encode()).digest()
    return heapq.nsmallest(k, items, key=rank)
