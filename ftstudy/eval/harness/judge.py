"""The judge endpoint of the judged benchmarks: any OpenAI-compatible URL (a local vLLM, `transformers serve`,
or a hosted API such as OpenAI's for the plan's GPT-4 judge).

The API key is read from the environment variable the user names (`--judge-api-key-env`, default
OPENAI_API_KEY) at the moment of each request and sent as a bearer token; only the variable's *name* is ever
recorded. Requests answered 429 or 5xx are retried with backoff (Retry-After honoured); at most
`concurrency` requests are in flight at once. `settings()` is what results and the study lock record: the
judge model id, its temperature, and where the key came from (never the key).

Example:
    >>> j = Judge("http://127.0.0.1:8001/v1", "gpt-4-0613", api_key_env="NO_SUCH_VAR_FOR_DOCTEST")
    >>> j.headers(), j.settings()["judge_model"], j.settings()["judge_url"]
    ({}, 'gpt-4-0613', 'http://127.0.0.1:8001')
"""
from __future__ import annotations

import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from ftstudy.core import redact
from ftstudy.core.bundled import evals_dir
from ftstudy.core.errors import UserError
from ftstudy.eval import client
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, module_of
from ftstudy.eval.stats import mean

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# The harnesses whose scores come from a judge: their results carry the judge in their identity (records.py).
JUDGED = frozenset({"judge-single", "judge-pairwise", "judge-criteria", "judge-toxicity", "mt-bench", "alpaca-eval"})


def safe_url(url: str) -> str:
    """The URL as results record it: no user-info, query or fragment (any could carry a secret; core.redact
    drops them, so the record does not change when the key does).

    Example:
        >>> safe_url("https://user:sk-123@api.example.com/v1?key=sk-123")
        'https://api.example.com'
    """
    return client.api_base(redact.url(url, drop=True))


@dataclass
class Judge:
    url: str
    model: str
    api_key_env: str = DEFAULT_KEY_ENV
    temperature: float = 0.0
    concurrency: int = 4
    retries: int = 6
    seed: int | None = None
    timeout: float = 600.0

    def headers(self) -> dict[str, str]:
        """The Authorization header when the named variable holds a key; none for a local judge without one."""
        key = os.environ.get(self.api_key_env, "").strip()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def ask(self, messages: list[dict], max_tokens: int = 512) -> str:
        """One judgment (reply text); 429 and 5xx are retried with backoff."""
        return client.chat_reply(self.url, self.model, messages, max_tokens=max_tokens, temperature=self.temperature,
                                 seed=self.seed, timeout=self.timeout, retries=self.retries, headers=self.headers(),
                                 retry_status=client.JUDGE_RETRY_STATUS, key_env=self.api_key_env).text

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """fn over items with at most `concurrency` judge requests in flight, results in input order."""
        return client.pmap(fn, items, workers=max(1, int(self.concurrency)))

    def settings(self) -> dict:
        """What a result and the lock record about the judge (the key's variable name, never the key)."""
        return {"judge_model": self.model, "judge_url": safe_url(self.url), "judge_temperature": self.temperature,
                "judge_api_key_env": self.api_key_env, "judge_concurrency": self.concurrency}


def from_context(ctx: BenchContext) -> Judge:
    """The run's judge: the model named, else the first one the judge server lists (a hosted API needs the
    name: --judge-model gpt-4-0613). A key variable the user named explicitly must be set."""
    if not ctx.judge_url:
        raise HarnessUnavailable(
            "this benchmark needs a judge model: serve one on an OpenAI-compatible endpoint (for example "
            "`ftstudy serve Qwen/Qwen2.5-32B-Instruct-AWQ --port 8001`) or use a hosted one, and pass its URL "
            "(--judge-url http://127.0.0.1:8001 or https://api.openai.com/v1, with --judge-model NAME)")
    env = ctx.judge_api_key_env or DEFAULT_KEY_ENV
    if env != DEFAULT_KEY_ENV and not os.environ.get(env, "").strip():
        raise HarnessUnavailable(f"--judge-api-key-env {env}: the variable {env} is not set in this environment; "
                                 f"export it (export {env}=...) or leave the option out for a judge without a key")
    judge = Judge(ctx.judge_url, ctx.judge_model or "", api_key_env=env, temperature=float(ctx.judge_temperature),
                  concurrency=int(ctx.judge_concurrency), seed=ctx.seed)
    if not judge.model:
        models = client.list_models(ctx.judge_url, headers=judge.headers(), key_env=judge.api_key_env)
        if not models:
            raise HarnessUnavailable(f"the judge server at {safe_url(ctx.judge_url)} lists no model; "
                                     "pass --judge-model NAME")
        judge.model = models[0]
    return judge


def graded_turns(rows: list[dict], replies: list[list[str]], judgments, parse) -> tuple[list[dict], dict[int, list]]:
    """One sample per conversation from its replies and the judge's texts (one per reply, in order): the grades
    `parse` reads (None: unreadable) and their mean as `score`; and the readable grades by turn (1, 2, ...).

    Example:
        >>> samples, by_turn = graded_turns([{"id": "q"}], [["a1", "a2"]], ["[[7]]", "?"], lambda t: 7.0 if "7" in t else None)
        >>> samples[0]["ratings"], samples[0]["score"], by_turn
        ([7.0, None], 7.0, {1: [7.0]})
    """
    judgments = iter(judgments)
    samples, by_turn = [], {}
    for row, rep in zip(rows, replies):
        texts = [next(judgments) for _ in rep]
        grades = [parse(t) for t in texts]
        for k, g in enumerate(grades):
            if g is not None:
                by_turn.setdefault(k + 1, []).append(g)
        samples.append({"id": row["id"], "category": row.get("category"), "output": rep[-1], "replies": rep,
                        "ratings": grades, "judgments": texts, "score": mean([g for g in grades if g is not None])})
    return samples, by_turn


def host(url: str | None) -> str | None:
    """The judge's host as a result's identity records it: no scheme, port, credentials, path or query.

    Example:
        >>> host("https://user:sk-1@API.openai.com:443/v1?key=sk-1")
        'api.openai.com'
    """
    return (urllib.parse.urlsplit(url).hostname or None) if url else None


def temperature_of(ctx: BenchContext, bench: dict) -> float:
    """The judge's sampling temperature for one benchmark: the benchmark's own, else the run's."""
    return float(bench.get("judge_temperature", ctx.judge_temperature))


def rubric_digest(path: Path) -> str:
    """A rubric file's identity: a digest of its bytes (its `version:` line can stay while its text changes)."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def identity(ctx: BenchContext, bench: dict) -> dict | None:
    """Who grades a judged benchmark (None for one without a judge): judge model, host, temperature and a digest
    of the rubric or judge prompts. Two results compare, and one is reused for another, only when this is equal.
    The rubric comes from the harness module's `judge_rubric(ctx, bench)` when it has one (MT-Bench's FastChat
    prompts, AlpacaEval's annotator), else from the benchmark's rubric file."""
    if bench["harness"] not in JUDGED or (bench["harness"] == "judge-pairwise" and ctx.tag == "base"):
        return None  # a pairwise base run is the reference answers: nobody judges it
    rubric = None
    own = getattr(module_of(bench), "judge_rubric", None)
    try:
        if own is not None:
            rubric = own(ctx, bench)
        elif bench.get("rubric"):
            rubric = rubric_digest(evals_dir() / bench["rubric"])
    except (OSError, UserError):
        rubric = None  # unreadable here: the preflight says why; such a result matches no other
    return {"model": ctx.judge_model or None, "host": host(ctx.judge_url), "temperature": temperature_of(ctx, bench),
            "rubric": rubric}


def preflight(ctx: BenchContext) -> list[str]:
    """Is the judge ready? One cheap request (GET /v1/models; a 1-token chat completion where a server has no
    model list) proves the URL answers and accepts the key. One line per problem, the key's variable named,
    never the key; the answer is kept for the other benchmarks of the same run (ctx.cache)."""
    if not ctx.judge_url:
        return ["needs a judge: pass --judge-url (a local `ftstudy serve Qwen/Qwen2.5-32B-Instruct-AWQ --port 8001`, "
                "or https://api.openai.com/v1) and --judge-model NAME"]
    env = ctx.judge_api_key_env or DEFAULT_KEY_ENV
    if env != DEFAULT_KEY_ENV and not os.environ.get(env, "").strip():
        return [f"--judge-api-key-env {env}: the variable {env} is not set here; export {env}=... or leave the "
                "option out for a judge without a key"]
    seen = ctx.cache.setdefault("judge_preflight", {})
    key = (ctx.judge_url, env, ctx.judge_model)
    if key not in seen:
        seen[key] = _probe(Judge(ctx.judge_url, ctx.judge_model or "", api_key_env=env))
    return list(seen[key])


def _probe(judge: Judge) -> list[str]:
    where = safe_url(judge.url)
    env = judge.api_key_env
    try:
        try:
            if client.list_models(judge.url, headers=judge.headers(), key_env=env) or judge.model:
                return []
            return [f"the judge at {where} lists no model; pass --judge-model NAME"]
        except client.RequestFailed as exc:
            if exc.status not in (404, 405) or not judge.model or isinstance(exc, client.AuthenticationFailed):
                raise
            # no model list at this endpoint: one chat completion of one token instead
            client.chat_reply(judge.url, judge.model, [{"role": "user", "content": "ping"}], max_tokens=1,
                              retries=1, timeout=60, headers=judge.headers(), key_env=env)
            return []
    except client.AuthenticationFailed as exc:
        return [f"the judge at {where} refused the key (HTTP {exc.status}): put a valid key in {env} "
                f"(export {env}=...), or name the variable that holds it with --judge-api-key-env"]
    except client.ServerUnreachable:
        return [f"no judge answers at {where}: start it (for example `ftstudy serve MODEL --port 8001`) or fix "
                "--judge-url"]
    except client.RequestFailed as exc:  # its message is already redacted (core.redact) and says what went wrong
        said = (str(exc).splitlines() or [""])[0]
        status = f" (HTTP {exc.status})" if exc.status else ""
        return [f"the judge at {where} failed a test request{status}: {said}; check --judge-url and --judge-model"]
