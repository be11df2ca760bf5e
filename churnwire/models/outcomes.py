"""Churn outcomes in event time: when a scored moment's horizon closes, the challenger learns it.

The first time a customer is scored with no moment pending, the scoring script records the
moment (as-of time, the challenger's inputs and both variants' scores) and its due time
(as-of + horizon) in ``cw:labels:due``. Once the event-time clock passes the due time, the
label is whether the customer ordered within the horizon, read from the same order facts the
features use. One worker at a time learns (a lease in Redis); the model, its metrics and the
removal of the learnt moments are written in one transaction, so a crash re-learns nothing
twice and loses nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from churnwire.models import serving_metrics as metrics
from churnwire.models.online import VARIANTS, Challenger
from churnwire.state.features import MICROS_PER_DAY, OrderFact
from churnwire.state.layout import decode_orders, orders_key

log = logging.getLogger(__name__)

LABELS_DUE = "cw:labels:due"
CHECKPOINT = "cw:challenger"
LEASE = "cw:challenger:lease"
LEASE_MILLISECONDS = 15_000
LEARN_BATCH = 500


def moment_key(customer_id: str) -> str:
    """Hash: the customer's pending scored moment: as_of, inputs, champion, challenger."""
    return f"cw:{{{customer_id}}}:moment"


def churned_within(orders: Sequence[OrderFact], as_of: int, horizon_micros: int) -> bool:
    """The label: no counted order in ``(as_of, as_of + horizon]``."""
    end = as_of + horizon_micros
    return not any(o.counts and as_of < o.created_at <= end for o in orders)


@dataclass(frozen=True)
class LearnReport:
    """What one learning step did."""

    learnt: int
    leader: bool


class OutcomeLearner:
    """Resolves due moments into labels and teaches the challenger, checkpointing each step."""

    def __init__(self, client: aioredis.Redis, worker_name: str, horizon_days: int) -> None:
        self._client = client
        self._worker = worker_name
        self._horizon = horizon_days * MICROS_PER_DAY
        self.challenger = Challenger()
        self._leading = False

    async def restore(self) -> None:
        """Load the checkpointed challenger (a fresh one when there is none)."""
        checkpoint = await self._client.get(CHECKPOINT)
        self.challenger = Challenger.from_checkpoint(str(checkpoint) if checkpoint else None)
        self._export()

    async def step(self, now: int) -> LearnReport:
        """Learn the moments due by ``now`` if this worker holds the lease."""
        if not await self._hold_lease():
            self._leading = False
            await self.restore()  # follow the leader's checkpoint for predictions
            return LearnReport(0, leader=False)
        if not self._leading:
            await self.restore()  # start from the last leader's checkpoint
            self._leading = True
        due = [str(customer_id) for customer_id in await self._client.zrangebyscore(
            LABELS_DUE, "-inf", now, start=0, num=LEARN_BATCH
        )]
        if not due:
            return LearnReport(0, leader=True)
        async with self._client.pipeline(transaction=False) as pipe:
            for customer_id in due:
                pipe.hgetall(moment_key(customer_id))
                pipe.hgetall(orders_key(customer_id))
            replies = await pipe.execute()

        learnt = 0
        for index in range(len(due)):
            moment, orders = replies[2 * index], replies[2 * index + 1]
            if not moment:
                continue  # the customer was deleted meanwhile
            churned = churned_within(decode_orders(orders), int(moment["as_of"]), self._horizon)
            self.challenger.learn(json.loads(moment["inputs"]), churned,
                                  float(moment["champion"]))
            learnt += 1
        await self._checkpoint(due)
        metrics.LABELS.inc(learnt)
        self._export()
        log.debug("learnt %d outcomes (%d in all)", learnt, self.challenger.labels)
        return LearnReport(learnt, leader=True)

    async def _checkpoint(self, learnt: Sequence[str]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(CHECKPOINT, self.challenger.to_checkpoint())
            pipe.zrem(LABELS_DUE, *learnt)
            for customer_id in learnt:
                pipe.delete(moment_key(customer_id))
            await pipe.execute()

    async def _hold_lease(self) -> bool:
        taken = await self._client.set(LEASE, self._worker, nx=True, px=LEASE_MILLISECONDS)
        if taken:
            return True
        if await self._client.get(LEASE) == self._worker:
            await self._client.pexpire(LEASE, LEASE_MILLISECONDS)
            return True
        return False

    def _export(self) -> None:
        for variant in VARIANTS:
            auc = self.challenger.auc_of(variant)
            if auc is not None:
                metrics.ONLINE_AUC.labels(variant=variant).set(auc)
