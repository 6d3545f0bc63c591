"""The one table renderer: rows of cells (strings) as aligned text (`list`, `score`, `compare`), Markdown or
HTML (`report`). Callers decide what the cells say; this decides only how they line up.

Example:
    >>> print(text(["id", "n"], [["a", "1"], ["bb", "22"]]))
    id  n
    --  --
    a   1
    bb  22
"""
from __future__ import annotations

import html as _html
from typing import Sequence

Rows = Sequence[Sequence[str]]


def text(headers: Sequence[str] | None, rows: Rows, *, widths: Sequence[int | None] | None = None,
         right: Sequence[int] = (), sep: str | Sequence[str] = "  ", rule: bool = True) -> str:
    """Aligned columns, trailing spaces trimmed. `widths`: a column's width (None or absent: its widest cell,
    header included); `right`: the columns aligned right; `sep`: the gap, or one per gap; `rule`: dashes under
    the header. A row shorter than the others ends in a note: its last cell is written as it is.

    Example:
        >>> print(text(["b", "delta"], [["x", "+0.1"], ["y: skipped"]], widths=[3, 6], right=[1], sep=" ", rule=False))
        b    delta
        x     +0.1
        y: skipped
    """
    n = max([len(headers or ())] + [len(r) for r in rows])
    full = [r for r in ([headers] if headers else []) + list(rows) if len(r) == n]
    auto = [max((len(r[i]) for r in full), default=0) for i in range(n)]
    widths = [w if w is not None else a for w, a in zip(list(widths or []) + [None] * n, auto)]
    gaps = [sep] * n if isinstance(sep, str) else list(sep)

    def line(cells: Sequence[str]) -> str:
        out = ""
        for i, cell in enumerate(cells):
            last = i == len(cells) - 1
            out += (cell if last and len(cells) < n else cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
            out += "" if last else gaps[i]
        return out.rstrip()

    head = [line(headers)] if headers else []
    dashes = [line(["-" * w for w in widths])] if headers and rule else []
    return "\n".join(head + dashes + [line(r) for r in rows])


def markdown(headers: Sequence[str], rows: Rows) -> str:
    """A Markdown table (cells as given).

    Example:
        >>> print(markdown(["a", "b"], [["1", "2"]]))
        | a | b |
        |---|---|
        | 1 | 2 |
    """
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def html(headers: Sequence[str], rows: Rows, cls: str) -> str:
    """An HTML table of class `cls`, every cell escaped.

    Example:
        >>> html(["a"], [["<b>"]], "t")
        '<table class="t"><thead><tr><th>a</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>'
    """
    th = "".join(f"<th>{_html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
