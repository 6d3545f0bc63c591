"""The one redaction of credentials in URLs, for every URL ftstudy prints (errors, progress, logs) or stores
(results, state, Slurm files, reports).

A URL can carry a secret in its user-info (`https://user:sk-...@host`), its query (`?api_key=...`, `?key=`,
`?token=`, a signed URL's `?sig=`) or its fragment (`#access_token=...`). Which query parameter is a secret
cannot be known in general, so every query and fragment value is masked and only the names are kept: the
message still says which parameter was given. A path can carry a token too (rare in OpenAI-compatible URLs);
that is not guessed at.

Example:
    >>> url("https://user:sk-123@api.example.com/v1?api_key=sk-123&api-version=2024")
    'https://***@api.example.com/v1?api_key=***&api-version=***'
    >>> url("https://user:sk-123@api.example.com/v1?key=sk-123", drop=True)
    'https://api.example.com/v1'
    >>> text("cannot reach http://u:p@h:8000/v1 (refused)")
    'cannot reach http://***@h:8000/v1 (refused)'
"""
from __future__ import annotations

import re
from typing import Iterable

MASK = "***"
# scheme://... up to whitespace, a quote or a closing bracket: how a URL sits inside an error message
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{}]+")


def _masked_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        pieces.append(f"{name}={MASK}" if eq else (MASK if piece else ""))
    return "&".join(pieces)


def url(u: str, drop: bool = False) -> str:
    """`u` without its credentials: user-info, query and fragment values masked (`***`), or with `drop` left
    out altogether (the stable form a result records, which does not change when a key changes).
    Works on text that does not parse as a URL too (it never raises)."""
    u = str(u)
    scheme, sep, rest = u.partition("://")
    if not sep:
        scheme, rest = "", u
    # the authority ends at the first / ? or #; user-info is everything before its last @
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = ("" if drop else MASK + "@") + authority.rpartition("@")[2]
    path, qmark, query = tail.partition("?")
    if not qmark:
        path, hashmark, fragment = tail.partition("#")
        query = ""
    else:
        query, hashmark, fragment = query.partition("#")
    out = (scheme + sep if sep else "") + authority + path
    if drop:
        return out
    if qmark:
        out += "?" + _masked_query(query)
    if hashmark:
        out += "#" + (MASK if fragment else "")
    return out


def text(s: str, secrets: Iterable[str] = ()) -> str:
    """`s` with every URL in it redacted by `url()`, and each of `secrets` (the key values a request sent,
    which a hostile server may echo back in its reply) replaced by `***`."""
    s = _URL_IN_TEXT.sub(lambda m: url(m.group(0)), str(s))
    for secret in secrets:
        if secret and len(secret) >= 4:  # a one-letter "secret" would mask half the message
            s = s.replace(secret, MASK)
    return s
