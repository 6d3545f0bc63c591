"""The one rule for a name that becomes a file or folder name (an experiment, method, hardware profile, tag,
run id, benchmark or source id, from the registry, a config header, the command line or a results file).

A name is a safe slug: letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 100
characters; so no `/`, no `..`, no NUL, never absolute. `under` joins checked names onto a root and refuses a
result that does not resolve inside the root (a symlink placed inside the root to somewhere else), so no name
from any input can make ftstudy write outside the folder it was given.

Example:
    >>> under("runs", "{experiment}", "{method}-{hardware}", experiment="code", method="lora", hardware="cpu")
    PosixPath('runs/code/lora-cpu')
    >>> try:
    ...     safe_name("../../..", "experiment", "cfg.yaml")
    ... except BadName as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    cfg.yaml: experiment '../../..' cannot name a file or folder: use letters, digits, '.', '_' and '-' (first ...)
"""
from __future__ import annotations

import re
from pathlib import Path

from ftstudy.core.errors import UserError

MAX_LEN = 100
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FORM = f"use letters, digits, '.', '_' and '-' (first a letter or digit, no '..', at most {MAX_LEN} characters)"


class BadName(UserError, ValueError):
    """A name that cannot become a path component; the message names the field, where it came from and the form."""


def is_safe(value: object, max_len: int = MAX_LEN) -> bool:
    """True when `value` may be used as one file or folder name.

    Example:
        >>> [is_safe(v) for v in ("lora-cpu-1a2b", "../x", "a/b", "", "a..b", "x" * 101)]
        [True, False, False, False, False, False]
    """
    return (isinstance(value, str) and len(value) <= max_len and SLUG.fullmatch(value) is not None
            and ".." not in value)


def safe_name(value: object, field: str, where: str = "") -> str:
    """`value` itself when it is a safe name; else BadName naming the field and `where` (a file, an option)."""
    if not is_safe(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise BadName(f"{where + ': ' if where else ''}{field} {shown} cannot name a file or folder: {FORM}")
    return value  # type: ignore[return-value]


def under(root: str | Path, *parts: str, where: str = "", **fields: object) -> Path:
    """`root` joined with `parts`, each a template filled from `fields` (every field checked by safe_name under
    its own name), each filled part a safe name too; the result must resolve inside `root`.

    Example:
        >>> under("results", "{experiment}.json", experiment="code")
        PosixPath('results/code.json')
    """
    for field, value in fields.items():
        safe_name(value, field, where)
    path = Path(root)
    for part in parts:
        name = part.format(**fields) if fields else part
        if not is_safe(name, 255):  # several checked names joined: the file system's own limit
            raise BadName(f"{where + ': ' if where else ''}{name[:60]!r} cannot name a file or folder: {FORM}")
        path = path / name
    base = Path(root).resolve()
    if not path.resolve().is_relative_to(base):
        raise BadName(f"{where + ': ' if where else ''}{path} resolves to {path.resolve()}, outside {base} "
                      "(a symbolic link inside it?): remove the link or choose another folder")
    return path
