"""Conversation-shaped sources: ShareGPT, WildChat and ToolBench rows -> chat `messages` (ftstudy/data/converters/plan_sources.py
registers them). A malformed item raises RowError naming it; a conversation that holds no user/assistant
exchange raises RowSkip and is counted.

Example:
    >>> sharegpt({"id": "a", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]})
    {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]}
"""
from __future__ import annotations

from typing import Any

from ftstudy.data.row_errors import RowError, RowSkip, msg

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
                  "assistant": "assistant", "bard": "assistant", "bing": "assistant", "system": "system"}


def _turns(items: list, role_key: str, text_key: str, roles: dict[str, str], field: str) -> list[dict[str, str]]:
    """Messages from a list of {role, text} objects; malformed items are RowErrors naming the item."""
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RowError(f"item {i} of {field!r} must be an object, got {type(item).__name__}")
        role, text = item.get(role_key), item.get(text_key)
        if role not in roles:
            raise RowError(f"item {i} of {field!r} has unknown {role_key} {role!r}")
        if not isinstance(text, str):
            raise RowError(f"item {i} of {field!r}: {text_key!r} must be a string, got {type(text).__name__}")
        out.append(msg(roles[role], text))
    return out


def _dialogue(messages: list[dict[str, str]]) -> dict[str, Any]:
    """A user/assistant exchange: a leading system message is kept, leading assistant turns (a conversation
    shared from its middle) and a trailing unanswered user turn are dropped; anything else that does not
    alternate, or no exchange at all, is a row without an example."""
    head = [m for m in messages[:1] if m["role"] == "system" and m["content"].strip()]
    body = [m for m in messages[len(head):]]
    while body and body[0]["role"] != "user":
        body.pop(0)
    while body and body[-1]["role"] != "assistant":
        body.pop()
    if not body:
        raise RowSkip("no user/assistant exchange")
    if any(m["role"] != ("user", "assistant")[i % 2] for i, m in enumerate(body)):
        raise RowSkip("turns do not alternate between user and assistant")
    if any(not m["content"].strip() for m in body):
        raise RowSkip("an empty turn")
    return {"messages": head + body}


def sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    """`conversations: [{from: human|gpt|system, value}]` -> chat messages.

    Example:
        >>> [m["role"] for m in sharegpt({"conversations": [{"from": "gpt", "value": "(cut)"},
        ...     {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "Q2"}]})["messages"]]
        ['user', 'assistant']
    """
    return _dialogue(_turns(row["conversations"], "from", "value", SHAREGPT_ROLES, "conversations"))


def wildchat(row: dict[str, Any]) -> dict[str, Any]:
    """`conversation: [{role: user|assistant, content, ...}]` (WildChat's per-turn metadata is ignored).

    Example:
        >>> wildchat({"conversation": [{"role": "user", "content": "Hi", "language": "English"},
        ...                            {"role": "assistant", "content": "Hello!"}]})["messages"][1]["content"]
        'Hello!'
    """
    roles = {"user": "user", "assistant": "assistant", "system": "system"}
    return _dialogue(_turns(row["conversation"], "role", "content", roles, "conversation"))


TOOLBENCH_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "function": "tool"}


def toolbench(row: dict[str, Any]) -> dict[str, Any]:
    """ToolBench (ToolLLaMA) trajectory: the system prompt with the API list, the user's task, assistant turns
    in their Thought / Action / Action Input text, and API observations as `tool` messages.

    Example:
        >>> [m["role"] for m in toolbench({"conversations": [{"from": "system", "value": "S"},
        ...     {"from": "user", "value": "U"}, {"from": "assistant", "value": "Action: f"},
        ...     {"from": "function", "value": "{}"}, {"from": "assistant", "value": "Action: Finish"}]})["messages"]]
        ['system', 'user', 'assistant', 'tool', 'assistant']
    """
    msgs = _turns(row["conversations"], "from", "value", TOOLBENCH_ROLES, "conversations")
    head = [m for m in msgs[:1] if m["role"] == "system"]
    body = msgs[len(head):]
    while body and body[-1]["role"] != "assistant":
        body.pop()
    if not body or body[0]["role"] != "user":
        raise RowError("conversation must start with a user turn and hold an assistant turn")
    for prev, cur in zip(body, body[1:]):
        if cur["role"] == "tool" and prev["role"] not in ("assistant", "tool"):
            raise RowError("a function observation must follow an assistant action")
        if cur["role"] == prev["role"] == "user":
            raise RowError("two user turns in a row")
    return {"messages": head + body}
