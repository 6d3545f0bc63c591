"""The two ways a hub row can fail to become a training row, shared by the converters and `prepare`.

Example:
    >>> from ftstudy.data.row_errors import RowError
    >>> str(RowError("missing field 'text'"))
    "missing field 'text'"
"""
from __future__ import annotations


class RowError(ValueError):
    """A malformed row; the message is the one-line reason prepare prints after `file:line:`."""

    @property
    def reason(self) -> str:
        return str(self)


class RowSkip(Exception):
    """A well-formed row that yields no training example (counted by reason; never stops a run)."""

    @property
    def reason(self) -> str:
        return str(self)


def msg(role: str, content: str) -> dict[str, str]:
    """One chat message in the shape Axolotl's chat_template type reads."""
    return {"role": role, "content": content}
