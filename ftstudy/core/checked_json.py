"""The one reader (and strict writer) of the JSON files ftstudy writes and reads back: results, their samples, the
study state, study.lock.json, a run's train.json, results/<exp>.json.

These files are also input: a person may edit one by hand, a disk may cut one short. So every read is checked
against the schema of its kind (`file_schemas/<kind>.schema.json`, JSON Schema 2020-12 through jsonschema), and a
file that does not hold what its readers need fails in one line (UserError) naming the file, the bad field and
how to fix it, instead of a traceback somewhere later. NaN and Infinity are not JSON (strict readers such as
`jq`, JavaScript's JSON.parse and Go refuse them): a reader rejects them, and `write` stores null instead and
says why under `undefined_values`.

Example:
    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "ag_news.json"; _ = p.write_text('{"value": NaN}')
    >>> try:
    ...     read(p, {"type": "object"}, fix="delete it")
    ... except UserError as e:
    ...     print(str(e).replace(str(p), "ag_news.json"))
    ag_news.json: field "value": NaN is not JSON (strict JSON readers refuse it); delete it
    >>> _ = write(p, {"value": float("nan")}); json.loads(p.read_text())
    {'undefined_values': {'value': 'was NaN, which JSON cannot hold'}, 'value': None}
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Iterator

from ftstudy.core.errors import UserError
from ftstudy.core.fsio import atomic_write

SCHEMAS = Path(__file__).with_name("file_schemas")
MAX_BYTES = 256 << 20  # far above any result or state file; a larger one is not ftstudy's
UNDEFINED = "undefined_values"  # where `write` says which values were NaN or infinite


@functools.cache
def schema(kind: str | Path) -> dict:
    """The schema of a kind of file (`result`, `samples`, `state`, `study_lock`, `train_run`), or of a path."""
    path = Path(kind) if isinstance(kind, Path) else SCHEMAS / f"{kind}.schema.json"
    return json.loads(path.read_text())


@functools.cache
def _validator(kind: str | Path):
    import jsonschema

    return jsonschema.Draft202012Validator(schema(kind))


def read(path: str | Path, kind: str | Path | dict, fix: str | None = None, *, allow_nonfinite: bool = False) -> Any:
    """The parsed file, once it is valid JSON (no NaN or Infinity unless `allow_nonfinite`) matching the schema
    of its kind; else a one-line UserError naming the file, the field and `fix` (default: the schema's x-fix)."""
    path = Path(path)
    doc = _parse(path, _bytes(path, fix, kind), fix, kind)
    _check(path, doc, kind, fix, "", allow_nonfinite)
    return doc


def read_lines(path: str | Path, kind: str | Path | dict, fix: str | None = None) -> list[Any]:
    """A JSON Lines file, each line checked as `read` checks a file (the field is named with its line number)."""
    path = Path(path)
    out = []
    for n, line in enumerate(_bytes(path, fix, kind).splitlines(), 1):
        if line.strip():
            doc = _parse(path, line, fix, kind, where=f"line {n}: ")
            _check(path, doc, kind, fix, f"line {n}: ", False)
            out.append(doc)
    return out


def write(path: str | Path, doc: Any) -> Path:
    """Write `doc` atomically as strict JSON: a NaN or infinite number becomes null, and (for an object) the
    file says which under `undefined_values` ({dotted field: why}), so a reader can tell undefined from absent."""
    atomic_write(path, dumps(doc, indent=2) + "\n")
    return Path(path)


def dumps(doc: Any, indent: int | None = None) -> str:
    """`doc` as strict JSON text (see `write`); one line when `indent` is None (a JSON Lines record)."""
    clean, undefined = finite(doc)
    if undefined and isinstance(clean, dict):
        clean = {**clean, UNDEFINED: {**(clean.get(UNDEFINED) or {}), **undefined}}
    return json.dumps(clean, indent=indent, sort_keys=True, default=str, allow_nan=False)


def finite(doc: Any, prefix: str = "") -> tuple[Any, dict[str, str]]:
    """A copy of `doc` with each NaN or infinite float replaced by None, and {dotted field: why} for each.

    Example:
        >>> finite({"a": [1.0, float("inf")], "b": 2})
        ({'a': [1.0, None], 'b': 2}, {'a.1': 'was Infinity, which JSON cannot hold'})
    """
    if isinstance(doc, float) and not math.isfinite(doc):
        word = "NaN" if math.isnan(doc) else ("Infinity" if doc > 0 else "-Infinity")
        return None, {prefix or "(top level)": f"was {word}, which JSON cannot hold"}
    if isinstance(doc, dict):
        items = [(k, finite(v, f"{prefix}{k}.")) for k, v in doc.items()]
    elif isinstance(doc, (list, tuple)):
        items = [(i, finite(v, f"{prefix}{i}.")) for i, v in enumerate(doc)]
    else:
        return doc, {}
    why = {k.rstrip("."): w for _, (_, sub) in items for k, w in sub.items()}
    out = {k: v for k, (v, _) in items} if isinstance(doc, dict) else [v for _, (v, _) in items]
    return out, why


def nonfinite_fields(doc: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted field, value) of each NaN or infinite number in a parsed document."""
    if isinstance(doc, float) and not math.isfinite(doc):
        yield prefix.rstrip(".") or "(top level)", doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield from nonfinite_fields(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from nonfinite_fields(v, f"{prefix}{i}.")


def _fix(kind: str | Path | dict, fix: str | None) -> str:
    return fix or (kind if isinstance(kind, dict) else schema(kind)).get("x-fix", "fix or delete the file")


def _bytes(path: Path, fix: str | None, kind) -> bytes:
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UserError(f"{path}: {size:,} bytes, more than any file ftstudy writes ({MAX_BYTES:,}); {_fix(kind, fix)}")
    return path.read_bytes()


def _parse(path: Path, data: bytes, fix: str | None, kind, where: str = "") -> Any:
    try:
        return json.loads(data.decode("utf-8"))  # NaN/Infinity parse here and are refused by field in _check
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {where}not UTF-8 text (byte {exc.start}); {_fix(kind, fix)}") from None
    except json.JSONDecodeError as exc:
        at = f"line {exc.lineno} column {exc.colno}" if not where else f"column {exc.colno}"
        raise UserError(f"{path}: {where}not valid JSON at {at} ({exc.msg}), probably cut short or mistyped; "
                        f"{_fix(kind, fix)}") from None


def _check(path: Path, doc: Any, kind, fix: str | None, where: str, allow_nonfinite: bool) -> None:
    import jsonschema

    for field, value in ([] if allow_nonfinite else nonfinite_fields(doc)):
        word = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        raise UserError(f'{path}: {where}field "{field}": {word} is not JSON (strict JSON readers refuse it); '
                        f"{_fix(kind, fix)}")
    check = jsonschema.Draft202012Validator(kind) if isinstance(kind, dict) else _validator(kind)
    error = jsonschema.exceptions.best_match(check.iter_errors(doc))
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path)
        msg = " ".join(error.message.split())
        if error.validator == "required":  # name the missing field itself, not the object that lacks it
            missing = [k for k in error.validator_value if k not in error.instance]
            field, msg = ".".join(filter(None, [field, missing[0]])), "missing (it is required)"
        field = field or "(top level)"
        msg = msg if len(msg) <= 160 else msg[:159] + "…"
        raise UserError(f'{path}: {where}field "{field}": {msg}; {_fix(kind, fix)}')
