"""Token lengths of prepared rows (from Axolotl's own preprocess), what a sequence_len drops, packing efficiency.

The lengths come from ftstudy/tool_env_scripts/count_tokens.py run in the train environment, so they are the
numbers Axolotl trains on (chat template, field formats, EOS handling and all). From them:

    too long         rows with length > sequence_len: Axolotl drops them silently (excess_length_strategy:
                     drop), and when it drops *every* row the trainer fails much later on an empty dataset,
                     so a source whose rows are all too long is an error here, before training.
    padded           efficiency without packing, one row per sequence padded to sequence_len S:
                         E_pad  = sum(l_i) / (n * S)
    packed           efficiency with sample packing, rows packed by first-fit-decreasing into bins of S:
                         E_pack = sum(l_i) / (B * S),  B = number of FFD bins
                     (sums over the n rows that fit; Axolotl's multipack sampler packs per batch, so its
                     figure can be a little lower.)

Preference rows (DPO) count prompt+chosen and prompt+rejected as two sequences; a row is too long when
either is (Axolotl's DPO length filter), and DPO never packs, so only E_pad is given.

Example:
    >>> s = stats([100, 300, 500, 700], 512)
    >>> (s.too_long, s.tokens, s.bins, round(s.padded, 3), round(s.packed, 3))
    (1, 900, 2, 0.586, 0.879)
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from ftstudy.core.bundled import TOOL_SCRIPTS

TOOL = TOOL_SCRIPTS / "count_tokens.py"


class TooLong(ValueError):
    """Every row of a source is longer than sequence_len: training would see none of them."""


@dataclass
class TokenStats:
    rows: int            # rows measured
    too_long: int        # rows longer than sequence_len (dropped by Axolotl)
    tokens: int          # tokens in the rows that fit
    max_len: int
    mean_len: float
    sequence_len: int
    padded: float        # E_pad, see the module docstring
    packed: float | None  # E_pack (None for preference rows: DPO does not pack)
    bins: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ffd_bins(lengths: list[int], capacity: int) -> int:
    """Bins of `capacity` that first-fit-decreasing packs `lengths` into (each length must fit one bin).

    A segment tree over the bins' remaining room finds the first bin with enough room in O(log n), so a
    few hundred thousand rows pack in seconds.

    Example:
        >>> ffd_bins([6, 5, 4, 3, 2], 10)
        2
    """
    items = sorted((x for x in lengths if 0 < x <= capacity), reverse=True)
    if not items:
        return 0
    size = 1 << max(0, (len(items) - 1).bit_length())
    room = [capacity] * (2 * size)  # room[node] = most room left in any bin under node; leaves are bins
    used = 0
    for x in items:
        node = 1
        while node < size:  # descend to the leftmost bin with room >= x (one always exists: n bins, n items)
            node = 2 * node if room[2 * node] >= x else 2 * node + 1
        room[node] -= x
        used = max(used, node - size + 1)
        node //= 2
        while node:
            room[node] = max(room[2 * node], room[2 * node + 1])
            node //= 2
    return used


def stats(lengths: list[int] | list[list[int]], sequence_len: int) -> TokenStats:
    """Statistics of one source's lengths (ints for SFT rows, [chosen, rejected] pairs for preference rows).

    Example:
        >>> st = stats([[40, 60], [50, 900]], 512)    # DPO rows: the second is too long on its rejected side
        >>> (st.too_long, st.tokens, st.packed)
        (1, 100, None)
    """
    pairs = bool(lengths) and isinstance(lengths[0], list)
    seqs = [list(x) if pairs else [x] for x in lengths]  # type: ignore[arg-type]
    fit = [s for s in seqs if max(s) <= sequence_len]
    flat = [x for s in fit for x in s]
    tokens = sum(flat)
    every = [x for s in seqs for x in s]
    bins = None if pairs else ffd_bins(flat, sequence_len)
    return TokenStats(
        rows=len(seqs), too_long=len(seqs) - len(fit), tokens=tokens, max_len=max(every, default=0),
        mean_len=round(sum(every) / len(every), 1) if every else 0.0, sequence_len=sequence_len,
        padded=tokens / (len(flat) * sequence_len) if flat else 0.0,
        packed=(tokens / (bins * sequence_len) if bins else 0.0) if not pairs else None, bins=bins)


def check_not_all_too_long(st: TokenStats, what: str, lengths: list) -> None:
    """Raise TooLong when no row of `what` fits sequence_len, with a sequence_len that would keep most rows."""
    if st.rows and st.too_long == st.rows:
        longest = sorted(max(x) if isinstance(x, list) else x for x in lengths)
        keep90 = longest[min(len(longest) - 1, math.ceil(0.9 * len(longest)) - 1)]
        suggest = -(-keep90 // 128) * 128
        raise TooLong(
            f"all {st.rows} rows of {what} are longer than sequence_len={st.sequence_len} (shortest: {longest[0]} "
            f"tokens); Axolotl would drop every row and training would fail on an empty dataset. Raise "
            f"sequence_len (--set sequence_len={suggest} keeps 90% of them) or use shorter rows.")


def count(configs: list[dict[str, Any]], progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run count_tokens.py in the train environment on Axolotl configs (dicts); one result per config.

    Each result is {"kind": "sft"|"preference", "lengths": [...]}, row lengths in the order of the config's
    datasets, file after file. All configs share one process, so Axolotl is imported once.
    """
    from ftstudy.core import tool_envs as envs
    from ftstudy.core.runner import check, run

    python = envs.bin_path("train")
    with tempfile.TemporaryDirectory(prefix="ftstudy-tokens-") as tmp:
        argv: list[str] = [str(python), str(TOOL)]
        outs = []
        for i, cfg in enumerate(configs):
            path, out = Path(tmp) / f"config-{i}.yaml", Path(tmp) / f"lengths-{i}.json"
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            argv += ["--job", str(path), str(out)]
            outs.append(out)
        log = Path(tmp) / "count_tokens.log"
        progress(f"counting tokens with Axolotl's preprocess ({len(configs)} config(s), train environment)")
        check(run(argv, log=log, quiet=True, env={"AXOLOTL_DO_NOT_TRACK": "1"}), "token counting (Axolotl preprocess)")
        return [json.loads(o.read_text()) for o in outs]
