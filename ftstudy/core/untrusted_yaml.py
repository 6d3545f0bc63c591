"""Read YAML from disk as untrusted input: a size cap, text only, and bounds on nesting and on what aliases
expand to.

A 370-byte "billion laughs" file (nine levels of nine aliases) parses quickly, since PyYAML shares aliased
objects, but anything that walks the result (a schema check, a dump) visits it 9**9 times; and a few kB of
`[[[[...` make every recursive walker (PyYAML's own composer among them) hit Python's recursion limit. So the
parser's event stream is measured first, in one loop, counting every alias at its expanded size and depth,
before any node or Python object is built; past `MAX_NODES` values or `MAX_DEPTH` levels the text is refused
with one line. Big files are refused by size before they are read, and binary or non-UTF-8 files by their bytes.

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
MAX_DEPTH = 100               # levels of nesting (a config has fewer than 10; Python's recursion limit is 1,000 frames)


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


def _scan(text: str, max_nodes: int, max_depth: int, name: str) -> None:
    """Refuse, from the parser's event stream and without recursion, a document nested deeper than max_depth
    (an alias counts as deep as what it stands for) or whose aliases expand past max_nodes values.

    Everything after this (composing nodes, building objects, the schema check, copies, dumps) recurses once
    per level, so the depth is bounded here first: Python's recursion limit (1,000 frames) is several frames
    per level away. Parsing is lazy, so a 100,000-level document is refused after reading max_depth levels.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    open_: list[list] = []  # per open collection: [anchor, level it opened at, values in it, deepest level in it]
    anchors: dict[str, tuple[int, int]] = {}  # finished anchor -> (values it expands to, levels it adds)
    seen = 0  # values so far, every alias at its expanded size

    def child(size: int, height: int, new: int) -> None:
        """A value of `size` values and `height` levels joins the innermost open collection; `new` of them are
        not counted yet (a scalar's 1, an alias's whole size; a finished collection counted its own)."""
        nonlocal seen
        level, seen = len(open_) + height, seen + new
        if level > max_depth:
            raise Refused(f"{name}nested deeper than {max_depth} levels (a config needs fewer than 10): flatten it")
        if seen > max_nodes:
            raise Refused(f"{name}the YAML's aliases expand to more than {max_nodes} values (an alias bomb?): "
                          "write the values out or use fewer aliases")
        if open_:
            open_[-1][2] += size
            open_[-1][3] = max(open_[-1][3], level)

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            child(0, 1, 1)  # the collection itself: checks the level it opens at; its values join it at its end
            open_.append([event.anchor, len(open_), 1, len(open_) + 1])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, opened, size, deepest = open_.pop()
            if anchor is not None:
                anchors[anchor] = (size, deepest - opened)
            child(size, deepest - opened, 0)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            child(1, 0, 1)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in anchors:
                child(*anchors[event.anchor], anchors[event.anchor][0])
            elif any(f[0] == event.anchor for f in open_):  # an alias inside its own anchor (&a [*a]): endless
                raise Refused(f"{name}the alias *{event.anchor} refers to a value that contains it: "
                              "write the values out")
            # else undefined: the composer reports it with its line and column


def load(text: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH, name: str | None = None) -> Any:
    """yaml.safe_load, refusing documents nested deeper than max_depth or whose aliases expand past max_nodes
    values; `name` (a file, `--set KEY`) starts the message. Syntax errors stay yaml.YAMLError, with their line
    and column."""
    _scan(text, max_nodes, max_depth, f"{name}: " if name else "")
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present: faster
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's int-from-text limit)
        raise Refused(f"{name + ': ' if name else ''}a value cannot be read ({exc}): shorten it") from None
