"""Event time as integer epoch microseconds: exact, comparable, cheap to store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """The UTC datetime of epoch microseconds."""
    return _EPOCH + timedelta(microseconds=micros)


def parse_iso_micros(text: str) -> int:
    """Epoch microseconds of an ISO-8601 timestamp such as Debezium's ``...T12:00:00.5Z``."""
    return to_micros(datetime.fromisoformat(text))


def end_of_day_micros(day: date) -> int:
    """The last microsecond of ``day`` in UTC: the as-of time of a ``--as-of YYYY-MM-DD``."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return to_micros(start + timedelta(days=1)) - 1
