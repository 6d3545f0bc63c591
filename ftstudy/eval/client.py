"""A small OpenAI-compatible chat client on urllib (the core venv has no `openai` package, and needs none).

One format for the scorers: when a server returns structured `tool_calls` (transformers serve parses them
when `tools` are sent; vLLM does with --enable-auto-tool-choice), they are written back into the reply text
as Qwen-style `<tool_call>{"name", "arguments"}</tool_call>` blocks, which is what a server that does not
parse them returns anyway. So the tool-call scorer reads the same text whichever engine answered.

Connection failures (server starting, restarting, overloaded: refused, reset, 502/503/504) are retried with
backoff; a server that stays away raises ServerUnreachable naming the URL. A request the server refuses
(4xx) or a reply that takes longer than `timeout` is not retried: repeating it would fail the same way.

Example:
    >>> from ftstudy.eval.client import chat
    >>> chat("http://127.0.0.1:8000", "/models/tiny", [{"role": "user", "content": "Hi"}])  # doctest: +SKIP
    'Hello! How can I help?'
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from ftstudy.core.errors import UserError

T = TypeVar("T")
R = TypeVar("R")
_RETRY_STATUS = {502, 503, 504}  # proxies and servers that are starting or overloaded say so with these
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


@dataclass
class Reply:
    """One chat completion: `text` is what scorers read (content + tool calls rendered as <tool_call>)."""

    text: str
    content: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set by callers that record a failed request instead of raising


def api_base(url: str) -> str:
    """The server root, whichever form the user gave: trailing slashes and a trailing /v1 are dropped.

    Example:
        >>> api_base("http://127.0.0.1:8000/v1/")
        'http://127.0.0.1:8000'
    """
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def get_json(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Any:
    """GET a JSON document once (no retries: callers that poll, like the server start-up, loop themselves)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})}),
                                timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8") or "null")


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


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """The server's Retry-After in seconds (numeric form only), capped; None when absent or unreadable."""
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(exc.headers.get("Retry-After", ""))))
    except (TypeError, ValueError, AttributeError):
        return None


def post_json(url: str, body: dict, timeout: float = 600.0, retries: int = 4, backoff: float = 0.5,
              headers: dict[str, str] | None = None, retry_status: frozenset[int] | set[int] = _RETRY_STATUS,
              key_env: str | None = None) -> Any:
    """POST JSON and decode the JSON reply, retrying connection failures `retries` times with doubling waits.
    `headers` are sent with every try (a judge's Authorization); they are never put into an error message.
    An HTTP status in `retry_status` is retried too, waiting the server's Retry-After when it sends one.

    Example:
        >>> post_json("http://127.0.0.1:9/v1/chat/completions", {}, retries=0)  # doctest: +SKIP
        Traceback (most recent call last):
        ftstudy.eval.client.ServerUnreachable: no model server answers at http://127.0.0.1:9 ...
    """
    data = json.dumps(body).encode("utf-8")
    reason, status, wait = "no attempt made", None, None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(wait if wait is not None else backoff * 2 ** (attempt - 1))
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:800]
            if exc.code in _AUTH_STATUS:
                raise _auth_error(url.split("/v1/")[0], exc.code, detail, key_env) from None
            if exc.code in retry_status:
                reason, status, wait = f"HTTP {exc.code}: {detail}", exc.code, _retry_after(exc)
                continue
            raise RequestFailed(f"{url} refused the request (HTTP {exc.code}): {detail}", exc.code) from None
        except (TimeoutError, socket.timeout):
            # A slow generation, not a dead server: sending it again would only double the wait.
            raise RequestFailed(f"{url} sent no reply within {timeout:g} s; raise the timeout or lower max_tokens") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise RequestFailed(f"{url} sent no reply within {timeout:g} s") from None
            reason = str(exc.reason)
        except (ConnectionError, http.client.HTTPException) as exc:  # reset, remote closed mid-reply
            reason = f"{type(exc).__name__}: {exc}"
        except ValueError as exc:
            raise RequestFailed(f"{url} answered with something that is not JSON: {exc}") from None
    if status is not None and status not in _RETRY_STATUS:  # a rate limit or fault that outlasted every try
        raise RequestFailed(f"{url} kept refusing the request ({reason}; {retries + 1} tries); "
                            f"{'lower the concurrency or wait for the rate limit' if status == 429 else 'try again later'}",
                            status)
    root = url.split("/v1/")[0]
    raise ServerUnreachable(
        f"no model server answers at {root} ({reason}; {retries + 1} tries). Is it running? Start one with "
        f"`ftstudy serve MODEL`, or read the server's log for why it stopped.")


def render_tool_calls(tool_calls: list[dict]) -> str:
    """OpenAI-shape tool calls -> Qwen-style <tool_call> blocks (arguments decoded when they are JSON).
    Whatever the server parsed is written back as it was, odd shapes included, so the scorer judges it.

    Example:
        >>> render_tool_calls([{"function": {"name": "f", "arguments": '{"x": 1}'}}])
        '<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>'
    """
    blocks = []
    for call in tool_calls:
        fn = call.get("function", call) if isinstance(call, dict) else call
        if isinstance(fn, dict):
            fn = {k: fn[k] for k in ("name", "arguments") if k in fn}  # name first, as models write it
            if isinstance(fn.get("arguments"), str):
                try:
                    fn["arguments"] = json.loads(fn["arguments"])
                except ValueError:
                    pass  # kept as the string it was: the scorer then reports the broken arguments itself
        blocks.append("<tool_call>\n" + json.dumps(fn, ensure_ascii=False) + "\n</tool_call>")
    return "\n".join(blocks)


def chat_reply(base_url: str, model: str, messages: list[dict], tools: list[dict] | None = None,
               max_tokens: int = 512, temperature: float = 0.0, seed: int | None = None,
               timeout: float = 600.0, retries: int = 4, extra: dict | None = None,
               headers: dict[str, str] | None = None, retry_status: frozenset[int] | set[int] = _RETRY_STATUS,
               key_env: str | None = None) -> Reply:
    """One chat completion with its details (finish reason, usage, structured tool calls). `extra` adds
    request fields as they are (stop, top_p, an engine's own fields); `headers` and `retry_status` go to
    post_json (a judge sends its Authorization and retries 429/5xx).

    Example:
        >>> r = chat_reply("http://127.0.0.1:8000", "m", [{"role": "user", "content": "Hi"}])  # doctest: +SKIP
        >>> r.finish_reason  # doctest: +SKIP
        'stop'
    """
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": int(max_tokens),
                            "temperature": float(temperature), "stream": False}
    if tools:
        body["tools"] = tools
    if seed is not None:
        body["seed"] = int(seed)
    body.update(extra or {})
    url = api_base(base_url) + "/v1/chat/completions"
    data = post_json(url, body, timeout=timeout, retries=retries, headers=headers, retry_status=retry_status,
                     key_env=key_env)
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError):
        raise RequestFailed(f"{url} answered without a choice: {json.dumps(data)[:500]}") from None
    content = message.get("content") or ""
    calls = message.get("tool_calls") or []
    text = "\n".join(part for part in (content, render_tool_calls(calls)) if part)
    return Reply(text=text, content=content, tool_calls=calls, finish_reason=choice.get("finish_reason"),
                 usage=data.get("usage") or {})


def chat(base_url: str, model: str, messages: list[dict], tools: list[dict] | None = None,
         max_tokens: int = 512, temperature: float = 0.0, seed: int | None = None,
         timeout: float = 600.0) -> str:
    """The reply text of one chat completion (see `chat_reply` for the details).

    Example:
        >>> chat("http://127.0.0.1:8000", "m", [{"role": "user", "content": "2+2?"}], max_tokens=8)  # doctest: +SKIP
        '4'
    """
    return chat_reply(base_url, model, messages, tools, max_tokens, temperature, seed, timeout).text


def converse(base_url: str, model: str, turns: list[str], system: str | None = None, max_tokens: int = 512,
             seed: int | None = None, temperature: float = 0.0) -> list[str]:
    """Play user turns one by one, the model's own replies kept in the history; returns the replies.

    Example:
        >>> converse("http://127.0.0.1:8000", "m", ["My name is Ada.", "What is my name?"])  # doctest: +SKIP
        ['Nice to meet you, Ada!', 'Your name is Ada.']
    """
    messages = [{"role": "system", "content": system}] if system else []
    replies: list[str] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn})
        replies.append(chat(base_url, model, messages, max_tokens=max_tokens, temperature=temperature, seed=seed))
        messages.append({"role": "assistant", "content": replies[-1]})
    return replies


def list_models(base_url: str, timeout: float = 10.0, headers: dict[str, str] | None = None,
                key_env: str | None = None) -> list[str]:
    """Ids of the models a server offers (`/v1/models`).

    Example:
        >>> list_models("http://127.0.0.1:8000")  # doctest: +SKIP
        ['/models/tiny']
    """
    url = api_base(base_url) + "/v1/models"
    try:
        data = get_json(url, timeout=timeout, headers=headers)
    except urllib.error.HTTPError as exc:  # it answered: not "unreachable"
        detail = exc.read().decode("utf-8", "replace")[:800]
        if exc.code in _AUTH_STATUS:
            raise _auth_error(api_base(base_url), exc.code, detail, key_env) from None
        raise RequestFailed(f"{url} refused the request (HTTP {exc.code}): {detail}", exc.code) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException) as exc:
        raise ServerUnreachable(f"no model server answers at {api_base(base_url)} ({exc})") from None
    return [m["id"] for m in (data or {}).get("data", []) if isinstance(m, dict) and "id" in m]


def pmap(fn: Callable[[T], R], items: Iterable[T], workers: int = 2) -> list[R]:
    """Apply fn to items with a small thread pool, results in input order. Two workers keep one request
    queued while another generates, without flooding a CPU server; the first error is raised.

    Example:
        >>> pmap(lambda x: x * 2, [1, 2, 3])
        [2, 4, 6]
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
