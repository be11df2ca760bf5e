"""Asking the model through litellm: timeouts, retries with backoff, one repair, and fallback.

Every path ends in an insight: when the breaker is open, the budget is spent, the model is
unreachable or its answer stays invalid after one repair request, the rules insight is used
and the reason is counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from churnwire.config import InsightSettings
from churnwire.insight_worker.context import InsightContext
from churnwire.insight_worker.knowledge import Passage
from churnwire.insight_worker.limits import CircuitBreaker, RateLimiter, TokenBudget
from churnwire.insight_worker.metrics import InsightMetrics
from churnwire.insight_worker.prompts import PromptTemplate
from churnwire.insight_worker.rules import rules_insight
from churnwire.insight_worker.validation import (
    InvalidInsight,
    ModelInsight,
    answer_schema,
    parse_answer,
)

# litellm otherwise fetches its model price list from the network when imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

log = logging.getLogger(__name__)
litellm.suppress_debug_info = True  # no banner on stdout for every failed call
logging.getLogger("LiteLLM").setLevel(logging.WARNING)  # one INFO line per call otherwise

BACKOFF_SECONDS = 0.5
LOCAL_API_KEY = "local-model"  # the embedded server checks no key; the client wants one
REPAIR_REQUEST = ("That answer is not usable: {problem}. Reply again with the corrected JSON "
                  "object only, same keys, nothing else.")
_TRANSIENT = (litellm.Timeout, litellm.APIConnectionError, litellm.ServiceUnavailableError,
              litellm.InternalServerError, litellm.RateLimitError)


class ModelUnavailable(RuntimeError):
    """The model could not be reached (after retries); ``reason`` labels the failure."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Completion:
    """One model reply and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    finish_reason: str


@dataclass
class Generated:
    """The insight for one alert and how it was made."""

    insight: ModelInsight
    generator: str  # "model" or "rules"
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    repaired: bool = False
    fallback_reason: str | None = None
    calls: list[str] = field(default_factory=list)
    first_answer: str | None = None


def _cost(response: Any) -> float:
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:
        return 0.0  # a model without a price (the local one) costs nothing


class ModelClient:
    """One chat completion with timeout, retries and backoff, in the configured JSON mode."""

    def __init__(self, settings: InsightSettings) -> None:
        self._settings = settings

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """How the answer's shape is requested from this server."""
        mode = self._settings.llm_json_mode
        if mode == "off":
            return None
        if mode == "object":
            return {"type": "json_object"}
        if not self._settings.llm_external:
            # llama-cpp-python turns a schema into a grammar that constrains decoding.
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema",
                "json_schema": {"name": "retention_insight", "schema": schema, "strict": True}}

    async def _once(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        settings = self._settings
        extra: dict[str, Any] = {}
        if settings.llm_api_base:
            extra["api_base"] = settings.llm_api_base
            if not settings.llm_external:
                extra["api_key"] = LOCAL_API_KEY
        response_format = self.response_format(schema)
        if response_format is not None:
            extra["response_format"] = response_format
        response = await litellm.acompletion(
            model=settings.llm_model, messages=messages, max_tokens=settings.llm_max_tokens,
            temperature=0.2, timeout=settings.llm_timeout_seconds, num_retries=0, **extra,
        )
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=_cost(response),
            finish_reason=str(choice.finish_reason),
        )

    async def warm_up(self, system_prompt: str) -> None:
        """One one-token call with the system prompt, so the first alert does not pay for the
        server's cold start (and a local server caches the shared prompt prefix)."""
        settings = self._settings
        extra: dict[str, Any] = {"api_base": settings.llm_api_base} if settings.llm_api_base else {}
        if settings.llm_api_base and not settings.llm_external:
            extra["api_key"] = LOCAL_API_KEY
        try:
            await litellm.acompletion(
                model=settings.llm_model, max_tokens=1, timeout=settings.llm_timeout_seconds,
                messages=[{"role": "system", "content": system_prompt},
                          {"role": "user", "content": "ready?"}], num_retries=0, **extra,
            )
        except Exception as error:
            log.warning("model warm-up failed (%s); continuing", type(error).__name__)

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        """The reply, retrying transient failures with exponential backoff."""
        attempts = self._settings.retries + 1
        for attempt in range(attempts):
            try:
                return await asyncio.wait_for(
                    self._once(messages, schema), self._settings.llm_timeout_seconds + 5
                )
            except (TimeoutError, *_TRANSIENT) as error:
                timed_out = isinstance(error, TimeoutError | litellm.Timeout)
                reason = "timeout" if timed_out else "unavailable"
                # A timed-out request keeps a one-slot local server busy: retrying would only
                # queue behind it, so timeouts are not retried.
                if timed_out or attempt + 1 == attempts:
                    raise ModelUnavailable(reason, f"{type(error).__name__}") from None
                delay = BACKOFF_SECONDS * 2 ** attempt
                log.info("model call failed (%s); retry %d in %.1f s", type(error).__name__,
                         attempt + 1, delay)
                await asyncio.sleep(delay)
            except Exception as error:
                # A refused request (bad request, authentication, ...) is not retried.
                raise ModelUnavailable("error", f"{type(error).__name__}") from None
        raise AssertionError("unreachable")


class InsightGenerator:
    """Turns a context and passages into an insight, by the model when it can."""

    def __init__(self, settings: InsightSettings, budget: TokenBudget, metrics: InsightMetrics,
                 client: ModelClient | None = None) -> None:
        self.settings = settings
        self.budget = budget
        self.metrics = metrics
        self.client = client or ModelClient(settings)
        self.rate = RateLimiter(settings.rate_per_minute)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_seconds)

    def _rules(self, context: InsightContext, passages: list[Passage], reason: str,
               spent: Generated | None = None) -> Generated:
        self.metrics.failures.labels(reason).inc()
        generated = Generated(rules_insight(context, passages), "rules", fallback_reason=reason)
        if spent is not None:
            generated.tokens, generated.cost = spent.tokens, spent.cost
            generated.prompt_tokens = spent.prompt_tokens
            generated.completion_tokens = spent.completion_tokens
            generated.calls, generated.first_answer = spent.calls, spent.first_answer
        return generated

    async def _call(self, messages: list[dict[str, str]], schema: dict[str, Any],
                    spent: Generated) -> Completion:
        await self.rate.wait()
        completion = await self.client.complete(messages, schema)
        tokens = completion.prompt_tokens + completion.completion_tokens
        spent.tokens += tokens
        spent.prompt_tokens += completion.prompt_tokens
        spent.completion_tokens += completion.completion_tokens
        spent.cost += completion.cost
        spent.calls.append(completion.finish_reason)
        self.metrics.tokens.inc(tokens)
        self.metrics.cost.inc(completion.cost)
        await self.budget.spend(tokens, completion.cost)
        self.metrics.budget_remaining.set(await self.budget.remaining_tokens())
        return completion

    async def generate(self, context: InsightContext, passages: list[Passage],
                       prompt: PromptTemplate) -> Generated:
        """The model's validated insight, or the rules insight with the reason it was used."""
        if not self.breaker.allow():
            return self._rules(context, passages, "breaker_open")
        if not await self.budget.allows_call():
            self.metrics.budget_remaining.set(0)
            return self._rules(context, passages, "budget")
        drivers = [d.feature for d in context.drivers]
        passage_ids = [p.passage_id for p in passages]
        schema = answer_schema(drivers, passage_ids)
        messages = prompt.messages(context, passages)
        spent = Generated(rules_insight(context, passages), "model")
        try:
            completion = await self._call(messages, schema, spent)
        except ModelUnavailable as failure:
            log.warning("alert %s: model call failed (%s: %s); rules insight", context.alert_id,
                        failure.reason, failure)
            self.breaker.failure()
            self.metrics.breaker_open.set(1 if self.breaker.is_open else 0)
            return self._rules(context, passages, failure.reason, spent)
        self.breaker.success()
        self.metrics.breaker_open.set(0)
        spent.first_answer = completion.text
        try:
            spent.insight = parse_answer(completion.text, drivers, passage_ids, prompt.system)
            return spent
        except InvalidInsight as problem:
            self.metrics.failures.labels("invalid").inc()
            log.info("alert %s: invalid answer (%s); asking once for a repair",
                     context.alert_id, problem)
            return await self._repair(context, passages, prompt, messages, completion, problem,
                                      spent)

    async def _repair(self, context: InsightContext, passages: list[Passage],
                      prompt: PromptTemplate, messages: list[dict[str, str]],
                      completion: Completion, problem: InvalidInsight,
                      spent: Generated) -> Generated:
        if not await self.budget.allows_call():
            return self._rules(context, passages, "budget", spent)
        drivers = [d.feature for d in context.drivers]
        passage_ids = [p.passage_id for p in passages]
        repair = [*messages, {"role": "assistant", "content": completion.text[:2000]},
                  {"role": "user", "content": REPAIR_REQUEST.format(problem=problem)}]
        try:
            answer = await self._call(repair, answer_schema(drivers, passage_ids), spent)
            spent.insight = parse_answer(answer.text, drivers, passage_ids, prompt.system)
        except ModelUnavailable as failure:
            self.breaker.failure()
            return self._rules(context, passages, failure.reason, spent)
        except InvalidInsight:
            return self._rules(context, passages, "repair_failed", spent)
        spent.repaired = True
        return spent
