"""JSON over HTTP to an OpenAI-compatible server (a model under test or a judge): one GET, one POST with
retries, and the errors both raise. Every request goes through core.outbound (a total deadline, a size cap,
no redirect that could carry a key away); every URL in a message goes through core.redact.

Connection failures (server starting, restarting, overloaded: refused, reset, 502/503/504) are retried with
backoff; a server that stays away raises ServerUnreachable naming the URL. A request the server refuses
(4xx) or a reply that takes longer than `timeout` is not retried: repeating it would fail the same way.

Example:
    >>> api_base("http://127.0.0.1:8000/v1/")
    'http://127.0.0.1:8000'
"""
from __future__ import annotations

import json
import time
from typing import Any

from ftstudy.core import outbound, redact
from ftstudy.core.errors import UserError

RETRY_STATUS = {502, 503, 504}  # proxies and servers that are starting or overloaded say so with these
# A hosted judge (OpenAI and the like) also answers 429 when rate limited and 500 on a passing fault: both are
# worth waiting for. A model server under test is not retried on 500 (transformers serve answers 500 for a
# malformed tool call: the same request fails the same way).
JUDGE_RETRY_STATUS = frozenset({429, *range(500, 600)})
MAX_RETRY_AFTER = 60.0  # seconds: a Retry-After longer than this is capped


class ServerUnreachable(UserError, ConnectionError):
    """Nothing answers at the server's URL (not started, crashed, wrong port)."""


class RequestFailed(UserError, RuntimeError):
    """The server answered but refused the request or timed out; the message carries its reply.
    `status` is the HTTP status (None for a timeout or a reply that is not JSON)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


KEY_VARIABLE = "OPENAI_API_KEY"  # where the key of an OpenAI-compatible server or judge is read from
_AUTH_STATUS = {401, 403}


class AuthenticationFailed(RequestFailed):
    """The server answered 401/403: it is up, but refuses the key (or its absence)."""


def _auth_error(root: str, code: int, detail: str, key_env: str | None = None) -> AuthenticationFailed:
    return AuthenticationFailed(f"{root} answered HTTP {code}: an authentication error (the server is up but refuses "
                                f"the key): set a valid key in {key_env or KEY_VARIABLE}. Reply: {detail[:200]}", code)


def api_base(url: str) -> str:
    """The server root, whichever form the user gave: trailing slashes and a trailing /v1 are dropped.

    Example:
        >>> api_base("http://127.0.0.1:8000/v1/")
        'http://127.0.0.1:8000'
    """
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def endpoint(base_url: str, path: str) -> str:
    """`path` on the server of `base_url`; a query the user gave (a gateway's ?key=) stays at the end.

    Example:
        >>> endpoint("https://gw.example/v1?key=k", "/v1/models")
        'https://gw.example/v1/models?key=k'
    """
    root, qmark, query = base_url.partition("?")
    return api_base(root) + path + qmark + query


def get_json(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None, key_env: str | None = None,
             max_bytes: int | None = None) -> Any:
    """GET a JSON document once (no retries: callers that poll, like the server start-up, loop themselves)."""
    try:
        rep = outbound.request(url, headers={"Accept": "application/json", **(headers or {})}, timeout=timeout,
                               max_bytes=max_bytes)
    except outbound.Unreachable as exc:
        raise ServerUnreachable(f"no model server answers at {redact.url(api_base(url))} ({exc.reason})") from None
    except outbound.Refused as exc:
        raise RequestFailed(str(exc)) from None
    return _decoded(url, rep, key_env, _secrets(headers))


def _secrets(headers: dict[str, str] | None) -> list[str]:
    """The credential values a request sends (a bearer token without its scheme too): kept out of messages."""
    values = [v for k, v in (headers or {}).items() if k.lower() not in ("content-type", "accept")]
    return values + [v.split(" ", 1)[1] for v in values if " " in v]


def _decoded(url: str, rep: outbound.Reply, key_env: str | None, secrets: list[str]) -> Any:
    """A 2xx reply's JSON; any other status or a body that is not JSON is one clear error."""
    shown = redact.url(url)
    detail = redact.text(rep.body[:800].decode("utf-8", "replace"), secrets)
    if rep.status in _AUTH_STATUS:
        raise _auth_error(redact.url(url.split("/v1/")[0]), rep.status, detail, key_env)
    if not 200 <= rep.status < 300:
        raise RequestFailed(f"{shown} refused the request (HTTP {rep.status}): {detail}", rep.status)
    try:
        return json.loads(rep.body.decode("utf-8") or "null")
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise RequestFailed(f"{shown} answered with something that is not JSON ({exc}): {detail[:200]}") from None


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when a server root answers 200 on both /health and /v1/models (vLLM and transformers serve do).

    Example:
        >>> answers("http://127.0.0.1:9")
        False
    """
    try:
        get_json(url + "/health", timeout=timeout)
        get_json(url + "/v1/models", timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"; a caller that waits watches the process
        return False


def _retry_after(rep: outbound.Reply) -> float | None:
    """The server's Retry-After in seconds (numeric form only), capped; None when absent or unreadable."""
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(rep.headers.get("Retry-After", ""))))
    except (TypeError, ValueError, AttributeError):
        return None


def post_json(url: str, body: dict, timeout: float = 600.0, retries: int = 4, backoff: float = 0.5,
              headers: dict[str, str] | None = None, retry_status: frozenset[int] | set[int] = RETRY_STATUS,
              key_env: str | None = None, max_bytes: int | None = None) -> Any:
    """POST JSON and decode the JSON reply, retrying connection failures `retries` times with doubling waits.
    `headers` are sent with every try (a judge's Authorization); they are never put into an error message.
    An HTTP status in `retry_status` is retried too, waiting the server's Retry-After when it sends one.
    Each try follows core.outbound's policy: `timeout` bounds the whole try, the reply is size-capped, and a
    redirect is not followed.

    Example:
        >>> post_json("http://127.0.0.1:9/v1/chat/completions", {}, retries=0)  # doctest: +SKIP
        Traceback (most recent call last):
        ftstudy.eval.client.ServerUnreachable: no model server answers at http://127.0.0.1:9 ...
    """
    data = json.dumps(body).encode("utf-8")
    shown, secrets = redact.url(url), _secrets(headers)
    reason, status, wait = "no attempt made", None, None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(wait if wait is not None else backoff * 2 ** (attempt - 1))
        try:
            rep = outbound.request(url, data=data, timeout=timeout, max_bytes=max_bytes, headers={
                "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
        except outbound.TimedOut:
            # A slow generation, not a dead server: sending it again would only double the wait.
            raise RequestFailed(f"{shown} sent no complete reply within {timeout:g} s; raise the timeout or lower "
                                "max_tokens") from None
        except outbound.Refused as exc:  # a redirect, an oversized reply, user-info: the same on every try
            raise RequestFailed(str(exc)) from None
        except outbound.Unreachable as exc:  # refused, reset, closed mid-reply: the server may be (re)starting
            reason = exc.reason
            continue
        if rep.status in retry_status:
            detail = redact.text(rep.body[:800].decode("utf-8", "replace"), secrets)
            reason, status, wait = f"HTTP {rep.status}: {detail}", rep.status, _retry_after(rep)
            continue
        return _decoded(url, rep, key_env, secrets)
    if status is not None and status not in RETRY_STATUS:  # a rate limit or fault that outlasted every try
        raise RequestFailed(f"{shown} kept refusing the request ({reason}; {retries + 1} tries); "
                            f"{'lower the concurrency or wait for the rate limit' if status == 429 else 'try again later'}",
                            status)
    raise ServerUnreachable(
        f"no model server answers at {shown.split('/v1/')[0]} ({reason}; {retries + 1} tries). Is it running? Start "
        f"one with `ftstudy serve MODEL`, or read the server's log for why it stopped.")
