"""The model client: the real ``anthropic`` SDK, configured from the environment, with usage accounting.

Healer, not the SDK, retries (429, 529, 5xx, timeouts, dropped connections; with backoff and
``retry-after``), because every call of one heal shares one deadline (``HEALER_LLM_DEADLINE``):
each attempt's timeout is the time left, so a hung gateway holds a heal for the deadline at
most, not for ``timeout x (retries + 1)`` plus backoff. What is left after the retries becomes
one ``LLMUnavailable`` line.

A reply is read as a stream and refused past ``HEALER_LLM_MAX_REPLY_BYTES`` without reading
the rest; the JSON is checked to be a Messages API message (``ModelAnswerError`` if not) and
handed on as plain JSON, so nothing the gateway sent beyond what the fixer keeps can travel
back in the next request. Works with any Anthropic-compatible gateway through
``ANTHROPIC_BASE_URL``. ``http_client`` is the transport seam tests use to reach a local server.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import NoReturn

from healer.errors import LLMBudgetSpent, LLMUnavailable, ModelAnswerError, ReplyTooLarge
from healer.settings import Settings

__all__ = ["LLMBudgetSpent", "LLMClient", "LLMConfig", "LLMUnavailable", "ModelAnswerError", "Reply", "ReplyTooLarge",
           "Usage"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = Settings.llm_model  # the one default, kept in healer.settings

# USD per million tokens: input, output, cache write, cache read.
PRICES = {
    "claude-opus-4": (15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4": (1.0, 5.0, 1.25, 0.10),
}

MAX_BACKOFF_S = 8.0  # the longest wait between two attempts, whatever the backoff doubling says
MAX_RETRY_AFTER_S = 60.0  # a longer retry-after from the gateway is not honoured: backoff applies


@dataclass(frozen=True)
class LLMConfig:
    api_key: str | None
    base_url: str | None
    model: str = DEFAULT_MODEL
    max_tokens: int = 4096  # per answer
    timeout_s: float = 120.0  # per attempt, and never more than what is left of the deadline
    max_retries: int = 3
    rounds: int = 3  # sandbox rounds per heal
    token_budget: int = 150_000  # input + output tokens per heal
    deadline_s: float = 120.0  # all model calls of one heal, retries and backoff included
    max_reply_bytes: int = 256 * 1024  # one reply's HTTP body; a real answer of 4096 tokens is ~20 KB
    backoff_s: float = 0.5  # the first wait before a retry; it doubles, up to MAX_BACKOFF_S

    @classmethod
    def from_env(cls) -> "LLMConfig":
        env = os.environ
        settings = Settings.from_env(env)
        return cls(
            api_key=env.get("ANTHROPIC_API_KEY") or None,
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            model=settings.llm_model,
            max_tokens=settings.llm_max_tokens,
            timeout_s=settings.llm_timeout,
            max_retries=settings.llm_retries,
            rounds=settings.llm_rounds,
            token_budget=settings.llm_token_budget,
            deadline_s=settings.llm_deadline,
            max_reply_bytes=settings.llm_max_reply_bytes,
            backoff_s=settings.llm_backoff,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.api_key) and Settings.from_env().llm

    def off_reason(self) -> str:
        if not self.api_key:
            return "LLM off: ANTHROPIC_API_KEY is not set"
        return "LLM off: HEALER_LLM=off"


@dataclass
class Usage:
    """Tokens and requests spent on one heal."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def add(self, usage) -> None:
        """Count one answered request; ``usage`` is the reply's usage object (JSON); junk counts as 0."""
        self.requests += 1
        usage = usage if isinstance(usage, dict) else {}
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(self, name, getattr(self, name) + value)

    def cost_usd(self, model: str) -> float:
        price = next((p for prefix, p in PRICES.items() if model.startswith(prefix)), PRICES["claude-sonnet-4"])
        return round((self.input_tokens * price[0] + self.output_tokens * price[1]
                      + self.cache_creation_input_tokens * price[2] + self.cache_read_input_tokens * price[3]) / 1e6, 6)

    def priced(self, model: str) -> ModelUsage:
        """These counts as they stand now, frozen and priced for ``model`` (the client keeps counting)."""
        return ModelUsage(model, replace(self), self.cost_usd(model))

    def to_json(self, model: str) -> dict:
        return self.priced(model).to_json()


@dataclass(frozen=True)
class ModelUsage:
    """What a model fix cost, as a Patch carries it and the PR body's cost line reads it: the
    token counts, the model they were spent on, and their price (fixed when counted, not
    re-priced later: a recorded heal keeps the dollars it reported)."""

    model: str
    usage: Usage
    cost_usd: float | None = None

    def to_json(self) -> dict:
        return {**asdict(self.usage), "total_tokens": self.usage.total_tokens, "cost_usd": self.cost_usd,
                "model": self.model}

    @classmethod
    def from_json(cls, data: dict) -> ModelUsage:
        """The record ``to_json`` wrote (an outcome's ``llm.usage``); missing or empty counts are 0."""
        counts = {f.name: int(data.get(f.name) or 0) for f in fields(Usage)}
        cost = data.get("cost_usd")
        return cls(str(data.get("model") or "unknown"), Usage(**counts), None if cost is None else float(cost))


@dataclass(frozen=True)
class Reply:
    """One Messages API answer as plain JSON: its content blocks (each a dict with a str
    ``type``), why it stopped, and its size. The fixer decides which parts it keeps."""

    content: list[dict]
    stop_reason: str | None
    usage: dict = field(default_factory=dict)
    size: int = 0  # bytes of the HTTP body


class _AttemptFailed(Exception):
    """One HTTP attempt that did not give a reply; ``retry`` says whether another may."""

    def __init__(self, what: str, retry: bool, wait: float | None = None, detail: str = ""):
        super().__init__(what)
        self.what, self.retry, self.wait, self.detail = what, retry, wait, detail


class LLMClient:
    """One heal's conversation partner: sends Messages API requests, counts what they cost and
    how long they took, against the heal's token budget and model deadline."""

    def __init__(self, config: LLMConfig, http_client=None):
        import anthropic

        if not config.api_key:
            raise LLMUnavailable(config.off_reason())
        self.config = config
        self.usage = Usage()
        self.spent_s = 0.0  # wall time inside model calls so far, retries and backoff included
        self.attempts = 0  # HTTP requests sent, answered or not
        # max_retries=0: the retry loop is ours, so that it can keep the deadline.
        kwargs = dict(api_key=config.api_key, timeout=config.timeout_s, max_retries=0)
        if config.base_url:
            kwargs["base_url"] = config.base_url
        if http_client is not None:
            kwargs["http_client"] = http_client
        self._client = anthropic.Anthropic(**kwargs)

    def budget_left(self) -> int:
        return self.config.token_budget - self.usage.total_tokens

    def time_left(self) -> float:
        return self.config.deadline_s - self.spent_s

    def create(self, *, system, tools, messages, tool_choice=None) -> Reply:
        """One Messages API answer.

        LLMBudgetSpent when the token budget is spent; LLMUnavailable when the API keeps
        failing or the deadline passes; ModelAnswerError when what came back is not a
        Messages API message or is over the size cap.
        """
        if self.budget_left() <= 0:
            raise LLMBudgetSpent(f"LLM budget spent: {self.usage.total_tokens} of {self.config.token_budget} tokens")
        kwargs = dict(model=self.config.model, max_tokens=self.config.max_tokens, system=system, tools=tools,
                      messages=messages)
        if tool_choice:
            kwargs["tool_choice"] = tool_choice
        started, before = time.monotonic(), asdict(self.usage)
        try:
            try:
                body, content_type = self._send(kwargs, deadline=started + self.time_left())
            except ModelAnswerError:
                self.usage.add(None)  # answered, and maybe billed, but refused unread: nothing says how much
                raise
            finally:
                self.spent_s += time.monotonic() - started
            return self._reply(body, content_type)
        finally:
            if self.usage.requests > before["requests"]:  # answered (and billed), usable or not
                self._audit(kwargs, before, started)

    def _audit(self, kwargs: dict, before: dict, started: float) -> None:
        """The request on the heal's audit trail: model, tokens, cost, the prompt's sha256 (its text only
        when HEALER_AUDIT_PROMPTS=keep); the policy's daily budgets sum these."""
        from healer.governance.audit import Action, note, prompt_detail

        spent = Usage(**{k: getattr(self.usage, k) - v for k, v in before.items()})
        prompt = {"system": kwargs["system"], "tools": kwargs["tools"], "messages": kwargs["messages"]}
        note(Action.MODEL_REQUEST, model=self.config.model, input_tokens=spent.input_tokens,
             output_tokens=spent.output_tokens, cache_creation_input_tokens=spent.cache_creation_input_tokens,
             cache_read_input_tokens=spent.cache_read_input_tokens, cost_usd=spent.cost_usd(self.config.model),
             seconds=round(time.monotonic() - started, 2), **prompt_detail(prompt))

    def _send(self, kwargs: dict, deadline: float) -> tuple[bytes, str]:
        """The body of the first successful attempt, retrying what may be retried before the deadline."""
        retries, last = self.config.max_retries, None
        for attempt in range(retries + 1):
            left = deadline - time.monotonic()
            if left <= 0.01:
                raise LLMUnavailable(self._deadline_passed(attempt, last))
            timeout = min(self.config.timeout_s, left)
            try:
                return self._attempt(kwargs, timeout, deadline)
            except _AttemptFailed as failed:
                last = failed
            if not last.retry or attempt == retries:
                break
            wait = last.wait if last.wait is not None and 0 < last.wait <= MAX_RETRY_AFTER_S else \
                min(self.config.backoff_s * 2 ** attempt, MAX_BACKOFF_S) * (1 - 0.25 * random.random())
            if time.monotonic() + wait >= deadline:
                raise LLMUnavailable(self._deadline_passed(attempt + 1, last))
            log.info("LLM API %s; retry %d of %d in %.1fs", last.what, attempt + 1, retries, wait)
            time.sleep(wait)
        tries = f" after {attempt} retries" if attempt else ""
        if last.what == "timed out" and time.monotonic() >= deadline - 0.05:
            # the attempt's timeout was what was left of the deadline
            raise LLMUnavailable(self._deadline_passed(attempt + 1, last))
        if last.what == "timed out":
            raise LLMUnavailable(f"LLM API timed out after {timeout:.0f}s and {attempt} retries")
        if last.what == "could not connect":
            raise LLMUnavailable(f"LLM API unreachable at {self.config.base_url or 'api.anthropic.com'}"
                                 f"{tries}: {last.detail}")
        raise LLMUnavailable(f"LLM API {last.what}{tries}: {last.detail}")

    def _deadline_passed(self, attempts: int, last: "_AttemptFailed | None") -> str:
        what = f"; the last attempt {last.what}" if attempts and last is not None else ""
        return (f"deadline of {self.config.deadline_s:g}s for all model calls of this heal passed "
                f"(HEALER_LLM_DEADLINE) after {self.attempts} requests{what}")

    def _attempt(self, kwargs: dict, timeout: float, deadline: float) -> tuple[bytes, str]:
        import anthropic

        self.attempts += 1
        try:
            with self._client.messages.with_streaming_response.create(**kwargs, timeout=timeout) as response:
                return self._read_capped(response, deadline), response.headers.get("content-type", "")
        except anthropic.APIStatusError as exc:
            self._raise_status(exc)
        except anthropic.APITimeoutError:
            raise _AttemptFailed("timed out", retry=True) from None
        except anthropic.APIConnectionError as exc:
            raise _AttemptFailed("could not connect", retry=True, detail=_first_line(exc.__cause__ or exc)) from None
        except Exception as exc:
            # Reading the body happens outside the SDK's request, so its transport errors come unwrapped,
            # from httpx or httpx2 depending on the SDK's version: known by their class names.
            kinds = {cls.__name__ for cls in type(exc).__mro__}
            if "TimeoutException" in kinds:
                raise _AttemptFailed("timed out", retry=True) from None
            if "TransportError" in kinds:
                raise _AttemptFailed("could not connect", retry=True, detail=_first_line(exc)) from None
            raise

    @staticmethod
    def _raise_status(exc) -> NoReturn:
        headers = exc.response.headers
        should = headers.get("x-should-retry")
        retryable = exc.status_code in (408, 409, 429) or exc.status_code >= 500
        retry = should == "true" or (should != "false" and retryable)
        raise _AttemptFailed(f"answered {exc.status_code}", retry=retry, wait=_retry_after(headers),
                             detail=_first_line(exc)) from None

    def _read_capped(self, response, deadline: float) -> bytes:
        """The body, read as it arrives: over the cap it is refused unread, past the deadline dropped."""
        cap = self.config.max_reply_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise ReplyTooLarge(f"the reply is {_size(int(length))}, over the {_size(cap)} cap "
                                   "(HEALER_LLM_MAX_REPLY_BYTES)")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:  # no content-length (chunked) or a gateway that lied about it
                raise ReplyTooLarge(f"the reply is over the {_size(cap)} cap (HEALER_LLM_MAX_REPLY_BYTES)")
            if time.monotonic() > deadline:  # a reply trickling in: each read waits, but not past the deadline
                raise _AttemptFailed("timed out", retry=True)
        return bytes(body)

    def _reply(self, body: bytes, content_type: str) -> Reply:
        """The body as a Messages API message, or ModelAnswerError saying in one line why not."""
        try:
            data = json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            self.usage.add(None)  # answered, and probably billed, but nothing says how much
            raise ModelAnswerError(f"the API answered with a body that is not JSON "
                                   f"({content_type or 'no content type'}, {_size(len(body))})") from None
        self.usage.add(data.get("usage") if isinstance(data, dict) else None)
        if not isinstance(data, dict) or data.get("type", "message") != "message":
            kind = data.get("type") if isinstance(data, dict) else type(data).__name__
            raise ModelAnswerError(f"the API answered with JSON that is not a message ({str(kind)[:40]})")
        content = data.get("content")
        if not isinstance(content, list) or not all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                                    for b in content):
            raise ModelAnswerError("the API answered with a message whose content is not a list of blocks")
        stop = data.get("stop_reason")
        return Reply(content=content, stop_reason=stop if isinstance(stop, str) else None,
                     usage=data.get("usage") if isinstance(data.get("usage"), dict) else {}, size=len(body))


def _retry_after(headers) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(headers.get(name)) / scale
        except (TypeError, ValueError):
            continue
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
