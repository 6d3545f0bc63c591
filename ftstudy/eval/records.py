"""Self-describing results: one JSON file per (experiment, tag, benchmark) plus its per-item records.

    results/<experiment>/<tag>/<benchmark>.json           what was measured, on what, how, and the metrics
    results/<experiment>/<tag>/<benchmark>.samples.jsonl   one record per item: id, score, output

Both are written atomically, as strict JSON (a NaN or infinite number is stored as null, and the record says
which under `undefined_values`), and read back through `core.checked_json` against their schemas, so a damaged or
hand-edited file fails in one line naming it and the field. A result is reused when the same model
(fingerprint), benchmark version, items and settings are asked for again, also from another experiment (the base
model's results are shared), and it is never overwritten by a different model's. It is reused or compared only
with one of the same harness version, protocol (the benchmark's `protocol:` in evals/benchmarks.yaml) and judge
(model, host, temperature, rubric): `mismatch` says, in one line, why two results are not the same measurement.

Example:
    >>> fingerprint_of("Qwen/Qwen2.5-7B")[:4]  # a hub id without a local copy: the id itself is hashed
    'hub:'
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

from ftstudy import __version__
from ftstudy.core import checked_json, runner
from ftstudy.core.errors import UserError
from ftstudy.core.names import is_safe, safe_name
from ftstudy.core.fsio import atomic_write, read_json  # read_json: what bench.py reads through this module
from ftstudy.core.bundled import REPO

WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")
SAMPLE_BYTES = 8 << 20  # hash the head and tail of each weight file: exact enough to tell models apart, fast on 15 GB


class ResultConflict(UserError):
    pass


def _file_digest(path: Path, h: "hashlib._Hash") -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as fh:
        h.update(fh.read(SAMPLE_BYTES))
        if size > 2 * SAMPLE_BYTES:
            fh.seek(-SAMPLE_BYTES, 2)
            h.update(fh.read())


def fingerprint_of(model: str, adapter: str | None = None) -> str:
    """Hash of the model's config, its weight index (names, sizes, sampled bytes) and the adapter's."""
    h = hashlib.sha256()
    parts = [Path(model)] + ([Path(adapter)] if adapter else [])
    local = Path(model).is_dir()
    if not local:
        h.update(f"hub:{model}".encode())
    for part in parts:
        if not part.is_dir():
            continue
        for name in ("config.json", "adapter_config.json"):
            if (part / name).is_file():
                h.update((part / name).read_bytes())
        for pattern in WEIGHTS:
            for f in sorted(part.glob(pattern)):
                _file_digest(f, h)
    prefix = "dir" if local else "hub"
    return f"{prefix}:{h.hexdigest()[:16]}"


def git_revision() -> str | None:
    return runner.capture(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=5)[1] or None


def paths(root: Path, experiment: str, tag: str, benchmark: str) -> tuple[Path, Path]:
    folder = root / experiment / tag
    return folder / f"{benchmark}.json", folder / f"{benchmark}.samples.jsonl"


def identity(record: dict) -> tuple:
    """What makes two results the same measurement (with `mismatch`: harness version, protocol, judge)."""
    return (record["model_fingerprint"], record["benchmark"], record["benchmark_version"], record.get("limit"),
            record.get("seed"), record.get("data_dir"))


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _judge_text(judge: dict | None) -> str:
    if not judge:
        return "no judge recorded"
    return (f"{judge.get('model')} at {judge.get('host')}, temperature {judge.get('temperature')}, "
            f"rubric {judge.get('rubric')}")


def mismatch(have: dict, want: dict, reuse: bool = False) -> str | None:
    """Why `have` and `want` are not measured the same way (None when they are): harness version, protocol
    (compared whole; absent on both is equal) or judge. For reuse (`want` is a request, not a result), a harness
    version the request could not know beforehand (None) matches any, and the judge must be equal exactly; for a
    comparison, a result nobody judged (a pairwise base run, "judge": null) compares with a judged one, but a
    result recorded before judges were part of a result's identity (no "judge" key) does not.

    Example:
        >>> a = {"harness_version": "0.4.13", "judge": {"model": "gpt-4o-mini", "host": "api.openai.com"}}
        >>> mismatch(a, {**a, "judge": {"model": "gpt-4-0613", "host": "api.openai.com"}}).split(":")[0]
        'judged by different judges (gpt-4o-mini at api.openai.com, temperature None, rubric None vs gpt-4-0613 at api.openai.com, temperature None, rubric None)'
        >>> mismatch(a, {**a, "harness_version": None}, reuse=True) is None
        True
    """
    hv, wv = have.get("harness_version"), want.get("harness_version")
    if hv != wv and not (reuse and wv is None):
        return f"harness versions differ ({hv} vs {wv}): rerun the older result (ftstudy bench ... --force)"
    hp, wp = have.get("protocol"), want.get("protocol")
    if _canon(hp) != _canon(wp):
        keys = sorted(k for k in set(hp or {}) | set(wp or {}) if (hp or {}).get(k) != (wp or {}).get(k)) \
            if isinstance(hp or {}, dict) and isinstance(wp or {}, dict) else []
        return f"protocols differ ({', '.join(keys) or 'the whole protocol'}): rerun both under the same protocol"
    hj, wj = have.get("judge"), want.get("judge")
    if reuse:
        differ = _canon(hj) != _canon(wj)
    else:
        hd, wd = isinstance(hj, dict), isinstance(wj, dict)
        differ = (hd and wd and _canon(hj) != _canon(wj)) or (hd and "judge" not in want) or (wd and "judge" not in have)
    if differ:
        return (f"judged by different judges ({_judge_text(hj)} vs {_judge_text(wj)}): scores from different judges "
                "do not compare; rerun one with the other's judge (--judge-url, --judge-model)")
    return None


def find_reusable(root: Path, want: dict) -> Path | None:
    """An existing result of the same measurement, in any experiment's folder: same model, benchmark version,
    items and settings, and the same harness version, protocol and judge (`mismatch`)."""
    for rec in iter_results(root, want["benchmark"]):
        if rec.get("status") == "ok" and identity(rec) == identity(want) and mismatch(rec, want, reuse=True) is None:
            return Path(rec["_path"])
    return None


def check_overwrite(path: Path, record: dict) -> None:
    if path.exists():
        old = read_record(path)
        if old.get("model_fingerprint") != record["model_fingerprint"]:
            raise ResultConflict(
                f"{path} holds a result for another model ({old.get('model')}, {old.get('model_fingerprint')}); "
                "results are never overwritten by a different model's: use another --tag, or remove that file")


def save(root: Path, record: dict, samples: list[dict]) -> Path:
    """Write the samples first and the record last, so a record always has its samples."""
    out, samples_path = paths(root, record["experiment"], record["tag"], record["benchmark"])
    check_overwrite(out, record)
    atomic_write(samples_path, "".join(checked_json.dumps(s) + "\n" for s in samples))
    checked_json.write(out, record)
    return out


def copy_result(src: Path, root: Path, experiment: str, tag: str) -> Path:
    """Share an existing measurement under another experiment's folder (the base model's results)."""
    rec = read_record(src)
    samples = load_samples(src)
    rec.update({"experiment": experiment, "tag": tag, "reused_from": str(src)})
    return save(root, rec, samples)


def read_record(path: Path, fix: str | None = None) -> dict:
    """A result record, checked (core/file_schemas/result.schema.json); a bad one is a one-line UserError."""
    return checked_json.read(path, "result", fix)


def load_samples(result_path: Path, fix: str | None = None) -> list[dict]:
    """The per-item records beside a result, each line checked (core/file_schemas/samples.schema.json)."""
    sp = result_path.with_name(result_path.name[: -len(".json")] + ".samples.jsonl")
    return checked_json.read_lines(sp, "samples", fix) if sp.exists() else []


def record(**fields: Any) -> dict:
    """A result record with the fields every result carries."""
    base = {"ftstudy_version": __version__, "git_revision": git_revision(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "status": "ok"}
    return {**base, **fields}


def iter_results(root: Path = Path("results"), benchmark: str = "*") -> Iterator[dict]:
    """Every readable result under root (of one benchmark, or all), with its file as `_path`."""
    for path in sorted(root.glob(f"*/*/{benchmark}.json")):
        try:
            rec = read_record(path)
        except (OSError, UserError):  # a damaged result is never reused; compare and the report name it
            continue
        if "benchmark" in rec:
            rec["_path"] = str(path)
            yield rec


def supersede(root: Path, experiment: str, tag: str, benchmarks: list[str], fingerprint: str,
              progress=print) -> list[Path]:
    """Move a tag's results that belong to another model (an earlier run of the same study stage, before a
    hyperparameter changed) to results/<exp>/.superseded/<tag>-<fingerprint>/: kept, never overwritten, and out
    of the way of the new model's results."""
    moved = []
    for bench in benchmarks:
        rec_path, samples_path = paths(root, experiment, tag, bench)
        if not rec_path.exists():
            continue
        old = read_record(rec_path).get("model_fingerprint", "unknown")
        if old == fingerprint:
            continue
        # the fingerprint comes from a file on disk: a hand-edited one must not name a folder outside results/
        dest = root / experiment / ".superseded" / safe_name(f"{tag}-{str(old).split(':')[-1][:12]}",
                                                             "model_fingerprint", str(rec_path))
        dest.mkdir(parents=True, exist_ok=True)
        if samples_path.exists():
            samples_path.replace(dest / samples_path.name)
        rec_path.replace(dest / rec_path.name)  # the record last: a record is never without its samples
        progress(f"{bench}: the earlier result of tag {tag!r} (another model) kept in {dest}")
        moved.append(dest / rec_path.name)
    return moved


def tags(root: Path, experiment: str, exclude: str = "base") -> list[str]:
    """The result tags of an experiment (superseded results and work folders are not tags, nor is a folder that
    no `--tag` could have made: a name outside the safe form was put there by hand)."""
    folder = root / experiment
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != exclude and is_safe(p.name))
