"""A small OpenAI-compatible chat client on urllib (the core venv has no `openai` package, and needs none).

One format for the scorers: when a server returns structured `tool_calls` (transformers serve parses them
when `tools` are sent; vLLM does with --enable-auto-tool-choice), they are written back into the reply text
as Qwen-style `<tool_call>{"name", "arguments"}</tool_call>` blocks, which is what a server that does not
parse them returns anyway. So the tool-call scorer reads the same text whichever engine answered.

The HTTP itself (retries, errors, the outbound policy: a total deadline, a size cap, no redirect that could
carry a key away) is server_json's; its names are imported here, where the harnesses look for them.

Example:
    >>> from ftstudy.eval.client import chat
    >>> chat("http://127.0.0.1:8000", "/models/tiny", [{"role": "user", "content": "Hi"}])  # doctest: +SKIP
    'Hello! How can I help?'
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

from ftstudy.core import redact
from ftstudy.eval.server_json import (JUDGE_RETRY_STATUS, KEY_VARIABLE, RETRY_STATUS,  # noqa: F401 - re-exported
                                      AuthenticationFailed, RequestFailed, ServerUnreachable, answers, api_base,
                                      endpoint, get_json, post_json)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Reply:
    """One chat completion: `text` is what scorers read (content + tool calls rendered as <tool_call>)."""

    text: str
    content: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set by callers that record a failed request instead of raising


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
               headers: dict[str, str] | None = None, retry_status: frozenset[int] | set[int] = RETRY_STATUS,
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
    url = endpoint(base_url, "/v1/chat/completions")
    data = post_json(url, body, timeout=timeout, retries=retries, headers=headers, retry_status=retry_status,
                     key_env=key_env)
    return reply_of(redact.url(url), data)


def reply_of(where: str, data: Any) -> Reply:
    """A chat completion's JSON as a Reply; a reply of another shape (no choice, `content` a dict or a list,
    `tool_calls` not a list) is one clear RequestFailed naming the field, never a TypeError further on.

    Example:
        >>> reply_of("judge", {"choices": [{"message": {"content": "[[7]]"}, "finish_reason": "stop"}]}).text
        '[[7]]'
    """
    def wrong(what: str) -> RequestFailed:
        return RequestFailed(f"{where} answered a chat completion of the wrong shape ({what}); is it an "
                             f"OpenAI-compatible /v1/chat/completions? Reply: {redact.text(json.dumps(data)[:300])}")

    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise wrong("no `choices` list with an object first")
    choice = choices[0]
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        raise wrong(f"`choices[0].message` is a {type(message).__name__}, not an object")
    content, calls = message.get("content") or "", message.get("tool_calls") or []
    if not isinstance(content, str):
        raise wrong(f"`choices[0].message.content` is a {type(content).__name__}, not a string")
    if not isinstance(calls, list):
        raise wrong(f"`choices[0].message.tool_calls` is a {type(calls).__name__}, not a list")
    finish, usage = choice.get("finish_reason"), data.get("usage") or {}
    text = "\n".join(part for part in (content, render_tool_calls(calls)) if part)
    return Reply(text=text, content=content, tool_calls=calls, finish_reason=finish if isinstance(finish, str) else None,
                 usage=usage if isinstance(usage, dict) else {})


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
    url = endpoint(base_url, "/v1/models")
    data = get_json(url, timeout=timeout, headers=headers, key_env=key_env)
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise RequestFailed(f"{redact.url(url)} answered without a `data` list of models; is it an OpenAI-compatible "
                            "server?")
    return [m["id"] for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]


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
