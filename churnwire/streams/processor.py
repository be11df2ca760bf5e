"""Turns a batch of source messages into state updates and dead letters.

Independent of Faust so that the same code runs under the worker, the tests and the benchmark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from churnwire.state.writer import BatchOutcome, StateWriter
from churnwire.streams import metrics
from churnwire.streams.changes import (
    CustomerChange,
    MalformedEvent,
    OrderChange,
)
from churnwire.streams.dead_letter import DeadLetter, DeadLetterSink, SourceMessage
from churnwire.streams.web_events import WebEvent

log = logging.getLogger(__name__)

Change = OrderChange | CustomerChange | WebEvent
Decoder = Callable[[bytes], Change]


@dataclass(frozen=True)
class BatchReport:
    """What one batch did."""

    outcome: BatchOutcome
    tombstones: int
    dead_letters: int


class ChangeProcessor:
    """Decodes, dead-letters and applies batches of change events, one topic per batch."""

    def __init__(
        self,
        writer: StateWriter,
        dead_letters: DeadLetterSink,
        decoders: dict[str, Decoder],
    ) -> None:
        self._writer = writer
        self._decoders = decoders
        self._dead_letters = dead_letters
        self._drift_logged: set[tuple[str, str]] = set()

    async def _decode_all(
        self, messages: Sequence[SourceMessage], decode: Decoder
    ) -> tuple[list[Change], int, int]:
        changes: list[Change] = []
        tombstones = dead = 0
        for message in messages:
            if message.value is None:
                tombstones += 1  # Kafka compaction marker after a delete: nothing to apply.
                continue
            try:
                change = decode(message.value)
            except MalformedEvent as error:
                await self._dead_letter(message, str(error))
                dead += 1
                continue
            self._note_drift(message.topic, getattr(change, "unknown_columns", frozenset()))
            changes.append(change)
        return changes, tombstones, dead

    async def _dead_letter(self, message: SourceMessage, reason: str) -> None:
        log.warning(
            "dead-lettering %s/%d@%d: %s", message.topic, message.partition, message.offset, reason
        )
        await self._dead_letters.send(DeadLetter(message, reason))
        metrics.DEAD_LETTERS.labels(topic=message.topic).inc()

    def _note_drift(self, topic: str, columns: frozenset[str]) -> None:
        for column in columns:
            metrics.SCHEMA_DRIFT.labels(topic=topic, column=column).inc()
            if (topic, column) not in self._drift_logged:
                self._drift_logged.add((topic, column))
                log.warning("schema drift on %s: unknown column %r ignored", topic, column)

    async def process(self, messages: Sequence[SourceMessage]) -> BatchReport:
        """Apply one batch of messages from one topic, in message order."""
        if not messages:
            return BatchReport(BatchOutcome(0, 0, frozenset()), 0, 0)
        topic = messages[0].topic
        changes, tombstones, dead = await self._decode_all(messages, self._decoders[topic])
        orders = [change for change in changes if isinstance(change, OrderChange)]
        customers = [change for change in changes if isinstance(change, CustomerChange)]
        web_events = [change for change in changes if isinstance(change, WebEvent)]

        started = time.perf_counter()
        outcome = await self._writer.apply(orders, customers, web_events)
        metrics.STATE_UPDATE_SECONDS.observe(time.perf_counter() - started)

        metrics.BATCH_SIZE.observe(len(messages))
        for name, count in (
            ("applied", outcome.applied),
            ("duplicate", outcome.duplicates),
            ("tombstone", tombstones),
            ("dead_letter", dead),
        ):
            metrics.EVENTS.labels(topic=topic, outcome=name).inc(count)
        return BatchReport(outcome=outcome, tombstones=tombstones, dead_letters=dead)
