"""The model client: the real ``anthropic`` SDK, configured from the environment, with usage accounting.

Retries with backoff on 429, 529, 5xx and timeouts are the SDK's own (``max_retries``);
what is left after them becomes one ``LLMUnavailable`` line. Works with any
Anthropic-compatible gateway through ``ANTHROPIC_BASE_URL``. ``http_client`` is the
transport seam tests use to reach a local server.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from healer.errors import HealerError

DEFAULT_MODEL = "claude-sonnet-4-5"

# USD per million tokens: input, output, cache write, cache read.
PRICES = {
    "claude-opus-4": (15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4": (1.0, 5.0, 1.25, 0.10),
}


class LLMUnavailable(HealerError):
    """The model could not be asked: no key, budget spent, or the API kept failing."""


@dataclass(frozen=True)
class LLMConfig:
    api_key: str | None
    base_url: str | None
    model: str = DEFAULT_MODEL
    max_tokens: int = 4096  # per answer
    timeout_s: float = 120.0
    max_retries: int = 3
    rounds: int = 3  # sandbox rounds per heal
    token_budget: int = 150_000  # input + output tokens per heal

    @classmethod
    def from_env(cls) -> "LLMConfig":
        env = os.environ
        return cls(
            api_key=env.get("ANTHROPIC_API_KEY") or None,
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            model=env.get("HEALER_LLM_MODEL") or DEFAULT_MODEL,
            max_tokens=int(env.get("HEALER_LLM_MAX_TOKENS", cls.max_tokens)),
            timeout_s=float(env.get("HEALER_LLM_TIMEOUT", cls.timeout_s)),
            max_retries=int(env.get("HEALER_LLM_RETRIES", cls.max_retries)),
            rounds=int(env.get("HEALER_LLM_ROUNDS", cls.rounds)),
            token_budget=int(env.get("HEALER_LLM_TOKEN_BUDGET", cls.token_budget)),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.api_key) and os.environ.get("HEALER_LLM", "on").lower() not in ("off", "0", "false")

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
        self.requests += 1
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            setattr(self, name, getattr(self, name) + int(getattr(usage, name, 0) or 0))

    def cost_usd(self, model: str) -> float:
        price = next((p for prefix, p in PRICES.items() if model.startswith(prefix)), PRICES["claude-sonnet-4"])
        return round((self.input_tokens * price[0] + self.output_tokens * price[1]
                      + self.cache_creation_input_tokens * price[2] + self.cache_read_input_tokens * price[3]) / 1e6, 6)

    def to_json(self, model: str) -> dict:
        return {**asdict(self), "total_tokens": self.total_tokens, "cost_usd": self.cost_usd(model), "model": model}


class LLMClient:
    """One heal's conversation partner: sends Messages API requests, counts what they cost."""

    def __init__(self, config: LLMConfig, http_client=None):
        import anthropic

        if not config.api_key:
            raise LLMUnavailable(config.off_reason())
        self.config = config
        self.usage = Usage()
        kwargs = dict(api_key=config.api_key, timeout=config.timeout_s, max_retries=config.max_retries)
        if config.base_url:
            kwargs["base_url"] = config.base_url
        if http_client is not None:
            kwargs["http_client"] = http_client
        self._client = anthropic.Anthropic(**kwargs)

    def budget_left(self) -> int:
        return self.config.token_budget - self.usage.total_tokens

    def create(self, *, system, tools, messages, tool_choice=None):
        """One Messages API call; LLMUnavailable when the budget is spent or the API keeps failing."""
        import anthropic

        if self.budget_left() <= 0:
            raise LLMUnavailable(f"LLM budget spent: {self.usage.total_tokens} of {self.config.token_budget} tokens")
        kwargs = dict(model=self.config.model, max_tokens=self.config.max_tokens, system=system, tools=tools,
                      messages=messages)
        if tool_choice:
            kwargs["tool_choice"] = tool_choice
        try:
            response = self._client.messages.create(**kwargs)
        except anthropic.APIStatusError as exc:
            raise LLMUnavailable(f"LLM API answered {exc.status_code} after {self.config.max_retries} retries: "
                                 f"{_first_line(exc)}") from None
        except anthropic.APITimeoutError:
            raise LLMUnavailable(f"LLM API timed out after {self.config.timeout_s:.0f}s "
                                 f"and {self.config.max_retries} retries") from None
        except anthropic.APIConnectionError as exc:
            where = self.config.base_url or "api.anthropic.com"
            raise LLMUnavailable(f"LLM API unreachable at {where}: {_first_line(exc)}") from None
        self.usage.add(response.usage)
        return response


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
