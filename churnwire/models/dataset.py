"""Training sets: offline feature rows at one or more cutoffs with their churn labels.

Rows are split by customer, never by row: a customer held out for testing is held out at every
cutoff, so the test metrics are about customers the model has never seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from churnwire.models.labels import churn_labels
from churnwire.state.offline import build_offline
from churnwire.timeutil import end_of_day_micros

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabeledRow:
    """A customer's features at a cutoff, and whether they churned in the horizon after it."""

    customer_id: str
    cutoff: date
    features: dict[str, Any]
    churned: int


def labeled_rows(postgres_url: str, cutoff: date, horizon_days: int) -> list[LabeledRow]:
    """Every customer signed up by ``cutoff``, with features and label at its end of day."""
    as_of = end_of_day_micros(cutoff)
    rows = build_offline(postgres_url, as_of)
    labels = churn_labels(postgres_url, (row["customer_id"] for row in rows), as_of, horizon_days)
    return [
        LabeledRow(row["customer_id"], cutoff, row, labels[row["customer_id"]]) for row in rows
    ]


def split_customers(
    customer_ids: Iterable[str], holdout: float, seed: int
) -> tuple[set[str], set[str]]:
    """(train, test) customer ids: a seeded shuffle, ``holdout`` of them to test."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout}")
    unique = sorted(set(customer_ids))
    order = np.random.default_rng(seed).permutation(len(unique))
    test_count = round(len(unique) * holdout)
    test = {unique[i] for i in order[:test_count]}
    return set(unique) - test, test


def rows_of(rows: Sequence[LabeledRow], customers: set[str]) -> list[LabeledRow]:
    """The rows whose customer is in ``customers``."""
    return [row for row in rows if row.customer_id in customers]
