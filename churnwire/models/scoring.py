"""Inline scoring: features from the online state, both models, one atomic write per customer.

After each batch of changes (and for each inactivity sweep) the worker scores the customers it
touched at one as-of time: it reads their state in one round trip, computes the features with
the same function as the offline builder, scores them with the champion (ONNX Runtime, one call
for the batch) and the challenger, and writes each customer's score with a Lua script that also
moves the alert state, queues the alert, schedules the next inactivity check and records the
moment whose outcome the challenger will learn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from churnwire.models import serving_metrics as metrics
from churnwire.models.alerts import AlertPolicy, AlertState, Crossing, encode_alert
from churnwire.models.champion import ChampionModel
from churnwire.models.online import Challenger, online_features
from churnwire.models.outcomes import LABELS_DUE, moment_key
from churnwire.state.features import MICROS_PER_DAY, compute_features
from churnwire.state.layout import (
    RISK_BANDS,
    SWEEP_DUE,
    alert_state_key,
    decode_orders,
    decode_profile,
    decode_web,
    orders_key,
    profile_key,
    score_key,
    web_key,
)

log = logging.getLogger(__name__)

# KEYS: score, alert state, outbox, sweep, moment, labels due, risk band counts.
# ARGV: 1 customer, 2 scored_at, 3 next check, 4 crossings read, 5 new state or '',
#       6 alert JSON, 7 moment due time, 8 moment inputs JSON or '', 9 champion p,
#       10 challenger p, 11 risk cell (segment|band), 12... score field/value pairs.
# Returns 0 when a newer score is stored, -1 when another writer moved the alert state since it
# was read (its write stands), 1 when written, 2 when written with an alert queued.
_WRITE_SCORE = """
local stored = redis.call('HGET', KEYS[1], 'scored_at')
if stored and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
local result = 1
if ARGV[5] ~= '' then
  local crossings = tonumber(redis.call('HGET', KEYS[2], 'crossings') or '0')
  if crossings ~= tonumber(ARGV[4]) then return -1 end
  redis.call('HSET', KEYS[2], 'state', ARGV[5], 'crossings', crossings + 1)
  redis.call('RPUSH', KEYS[3], ARGV[6])
  result = 2
end
local cell = redis.call('HGET', KEYS[1], 'risk_cell')
if cell ~= ARGV[11] then
  if cell then redis.call('HINCRBY', KEYS[7], cell, -1) end
  redis.call('HINCRBY', KEYS[7], ARGV[11], 1)
end
redis.call('HSET', KEYS[1], 'risk_cell', ARGV[11], unpack(ARGV, 12))
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
if ARGV[8] ~= '' and redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('HSET', KEYS[5], 'as_of', ARGV[2], 'inputs', ARGV[8],
             'champion', ARGV[9], 'challenger', ARGV[10])
  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[1])
end
return result
"""


# KEYS: score, alert state, moment, sweep, labels due, risk band counts. ARGV: customer.
_FORGET = """
local cell = redis.call('HGET', KEYS[1], 'risk_cell')
if cell then redis.call('HINCRBY', KEYS[6], cell, -1) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""


def outbox_key(worker_name: str) -> str:
    """List: alert messages a worker has raised and not yet published."""
    return f"cw:outbox:{worker_name}"


def drives_alerts(customer_id: str, challenger_share: float) -> str:
    """The variant whose score drives this customer's alerts: a stable split by id hash."""
    digest = hashlib.sha256(customer_id.encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "challenger" if position < challenger_share else "champion"


@dataclass(frozen=True)
class ScoringReport:
    """What one scoring pass did."""

    scored: int
    alerts: int
    purged: int


@dataclass
class _Decision:
    """The scores of one customer and whether their alert state moves."""

    variant: str
    probability: float
    version: str
    state: AlertState
    new_state: AlertState
    crossings: int
    champion_probability: float
    champion_version: str
    challenger_probability: float
    challenger_version: str
    top_features: list[dict[str, Any]] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        """Whether this score is a crossing."""
        return self.new_state != self.state


@dataclass(frozen=True)
class _Customer:
    customer_id: str
    features: dict[str, Any]
    score: dict[str, str]
    alert: dict[str, str]


class ScoringStage:
    """Scores customers at an as-of time and writes scores, alert states and alerts."""

    def __init__(
        self,
        client: aioredis.Redis,
        policy: AlertPolicy,
        worker_name: str,
        challenger_share: float,
        sweep_interval_days: int,
        horizon_days: int,
    ) -> None:
        self._client = client
        self._policy = policy
        self._outbox = outbox_key(worker_name)
        self._share = challenger_share
        self._sweep_micros = sweep_interval_days * MICROS_PER_DAY
        self._horizon_micros = horizon_days * MICROS_PER_DAY
        self._write = client.register_script(_WRITE_SCORE)
        self._forget = client.register_script(_FORGET)

    async def score(
        self,
        customer_ids: Iterable[str],
        as_of: int,
        champion: ChampionModel,
        challenger: Challenger,
    ) -> ScoringReport:
        """Score these customers at ``as_of`` (epoch microseconds)."""
        started = time.perf_counter()
        customers, gone = await self._read(sorted(set(customer_ids)), as_of)
        if gone:
            await self._purge(gone)
        if not customers:
            return ScoringReport(0, 0, len(gone))

        rows = [customer.features for customer in customers]
        matrix = champion.matrix(rows)
        champion_probabilities = champion.predict_matrix(matrix)
        if champion.drift is not None:
            champion.drift.observe(matrix, champion_probabilities)
        champion_scores = [float(p) for p in champion_probabilities]
        inputs = [online_features(row) for row in rows]
        challenger_scores = challenger.predict(inputs)
        decisions = [
            self._decide(customer, champion, challenger, champion_scores[i], challenger_scores[i])
            for i, customer in enumerate(customers)
        ]
        moving = [i for i, decision in enumerate(decisions) if decision.moved]
        reasons = champion.top_contributions_batch([rows[i] for i in moving])
        for i, top_features in zip(moving, reasons, strict=True):
            decisions[i].top_features = top_features

        async with self._client.pipeline(transaction=False) as pipe:
            for customer, decision, row_inputs in zip(customers, decisions, inputs, strict=True):
                await self._queue_write(pipe, customer, decision, as_of, row_inputs)
            results = await pipe.execute()
        alerts = sum(1 for result in results if int(result) == 2)

        metrics.SCORING_SECONDS.observe(time.perf_counter() - started)
        for variant, scores in (("champion", champion_scores),
                                ("challenger", challenger_scores)):
            metrics.SCORES.labels(variant=variant).inc(len(scores))
            for probability in scores:
                metrics.CHURN_PROBABILITY.labels(variant=variant).observe(probability)
        return ScoringReport(len(customers), alerts, len(gone))

    async def _read(
        self, customer_ids: Sequence[str], as_of: int
    ) -> tuple[list[_Customer], list[str]]:
        """Each customer's features at ``as_of``, score and alert state, in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for customer_id in customer_ids:
                pipe.hgetall(profile_key(customer_id))
                pipe.hgetall(orders_key(customer_id))
                pipe.hgetall(score_key(customer_id))
                pipe.hgetall(alert_state_key(customer_id))
                pipe.hgetall(web_key(customer_id))
            replies = await pipe.execute()
        customers, gone = [], []
        for index, customer_id in enumerate(customer_ids):
            profile_hash, orders_hash, score, alert, web = replies[5 * index:5 * index + 5]
            profile = decode_profile(customer_id, profile_hash)
            if profile is None:
                gone.append(customer_id)
                continue
            if not profile.exists_at(as_of):
                continue
            features = compute_features(decode_orders(orders_hash), profile, as_of,
                                        decode_web(web))
            customers.append(_Customer(customer_id, features, score, alert))
        return customers, gone

    def _decide(
        self,
        customer: _Customer,
        champion: ChampionModel,
        challenger: Challenger,
        champion_probability: float,
        challenger_probability: float,
    ) -> _Decision:
        variant = drives_alerts(customer.customer_id, self._share)
        state = cast(AlertState, customer.alert.get("state", "below"))
        probability = champion_probability if variant == "champion" else challenger_probability
        return _Decision(
            variant=variant,
            probability=probability,
            version=champion.version if variant == "champion" else challenger.version,
            state=state,
            new_state=self._policy.next_state(state, probability),
            crossings=int(customer.alert.get("crossings", "0")),
            champion_probability=champion_probability,
            champion_version=champion.version,
            challenger_probability=challenger_probability,
            challenger_version=challenger.version,
        )

    async def _queue_write(
        self,
        pipe: Any,
        customer: _Customer,
        decision: _Decision,
        as_of: int,
        inputs: dict[str, float],
    ) -> None:
        fields: dict[str, str] = {
            "probability": repr(decision.probability),
            "model_version": decision.version,
            "variant": decision.variant,
            "risk_band": self._policy.risk_band(decision.probability),
            "scored_at": str(as_of),
            "champion_probability": repr(decision.champion_probability),
            "champion_version": decision.champion_version,
            "challenger_probability": repr(decision.challenger_probability),
            "challenger_version": decision.challenger_version,
        }
        alert_json = ""
        if decision.moved:
            crossing = self._crossing(customer, decision, as_of)
            fields["top_features"] = json.dumps(crossing.top_features)
            alert_json = encode_alert(crossing.message(self._policy, datetime.now(UTC)))
            metrics.ALERTS.labels(type=crossing.type, variant=decision.variant).inc()

        customer_id = customer.customer_id
        await self._write(
            keys=[score_key(customer_id), alert_state_key(customer_id), self._outbox,
                  SWEEP_DUE, moment_key(customer_id), LABELS_DUE, RISK_BANDS],
            args=[
                customer_id, as_of, as_of + self._sweep_micros, decision.crossings,
                decision.new_state if decision.moved else "", alert_json,
                as_of + self._horizon_micros, json.dumps(inputs),
                repr(decision.champion_probability), repr(decision.challenger_probability),
                f"{customer.features.get('segment') or 'unknown'}|{fields['risk_band']}",
                *[item for pair in fields.items() for item in pair],
            ],
            client=pipe,
        )

    @staticmethod
    def _crossing(customer: _Customer, decision: _Decision, as_of: int) -> Crossing:
        previous = customer.score.get("probability")
        return Crossing(
            customer_id=customer.customer_id,
            number=decision.crossings + 1,
            type="churn_risk" if decision.new_state == "above" else "recovered",
            probability=decision.probability,
            previous_probability=float(previous) if previous is not None else None,
            model_version=decision.version,
            variant=decision.variant,
            event_time=as_of,
            top_features=decision.top_features,
        )

    async def _purge(self, customer_ids: Sequence[str]) -> None:
        """Forget the scores of deleted customers: no alert, no sweep, no band count."""
        async with self._client.pipeline(transaction=False) as pipe:
            for customer_id in customer_ids:
                await self._forget(
                    keys=[score_key(customer_id), alert_state_key(customer_id),
                          moment_key(customer_id), SWEEP_DUE, LABELS_DUE, RISK_BANDS],
                    args=[customer_id],
                    client=pipe,
                )
            await pipe.execute()
