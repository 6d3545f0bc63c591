"""Read YAML from disk as untrusted input: a size cap, text only, and a bound on what aliases expand to.

A 370-byte "billion laughs" file (nine levels of nine aliases) parses quickly, since PyYAML shares aliased
objects, but anything that walks the result (a schema check, a dump) visits it 9**9 times. So the composed
node graph is measured, counting every alias at its expanded size, before any Python object is built; past
`MAX_NODES` the file is refused with one line. Big files are refused by size before they are read, and
binary or non-UTF-8 files by their bytes.

Example:
    >>> load("a: &x [1, 2]\\nb: *x\\n")
    {'a': [1, 2], 'b': [1, 2]}
    >>> try:
    ...     load("a: &a [x, x]\\nb: &b [*a, *a]\\nc: [*b, *b]\\n", max_nodes=10)
    ... except Refused as exc:
    ...     print(exc)
    the YAML's aliases expand to more than 10 values (an alias bomb?): write the values out or use fewer aliases
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ftstudy.core.errors import UserError

MAX_BYTES = 256 * 1024        # an Axolotl config is a few kB (the golden files: about 2 kB)
MAX_NODES = 100_000           # values after alias expansion


class Refused(UserError):
    """Input refused before it could hang or crash ftstudy; the message is one line saying why."""


def read_text(path: str | Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's text ('-': standard input), refused when too big, binary or not UTF-8.

    Example:
        >>> read_text("/dev/null")
        ''
    """
    name = "standard input" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            size = Path(path).stat().st_size
            if size > max_bytes:
                raise Refused(f"{name}: {_size(size)} is too big for a config (limit {_size(max_bytes)}): "
                              "is this the right file?")
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise Refused(f"{name}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise Refused(f"{name}: more than {_size(max_bytes)} is too big for a config: is this the right file?")
    if b"\0" in data:
        raise Refused(f"{name}: a binary file, not YAML text: give the .yaml config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(f"{name}: not UTF-8 text (byte {exc.start}): save the config as UTF-8") from None


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n // 1024} kB"


def expanded_size(node: yaml.Node, max_nodes: int) -> int:
    """How many values the node stands for with every alias written out (stops counting past max_nodes)."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        if id(n) in memo:
            return memo[id(n)]
        if depth > 1000:  # a recursive alias (&a [*a]) or absurd nesting
            return max_nodes + 1
        memo[id(n)] = max_nodes + 1  # a cycle reached again before it is finished counts as too big
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [x for pair in n.value for x in pair]
        else:
            children = []
        for child in children:
            total += size(child, depth + 1)
            if total > max_nodes:
                break
        memo[id(n)] = total
        return total

    return size(node, 0)


def load(text: str, max_nodes: int = MAX_NODES) -> Any:
    """yaml.safe_load, refusing documents whose aliases expand past max_nodes values (syntax errors stay
    yaml.YAMLError, with their line and column)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when present: faster
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node, max_nodes) > max_nodes:
            raise Refused(f"the YAML's aliases expand to more than {max_nodes} values (an alias bomb?): "
                          "write the values out or use fewer aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()
