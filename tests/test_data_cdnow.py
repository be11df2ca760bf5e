"""CDNOW parsing (pure) and loading into the test stack's PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from churnwire.data import cdnow
from churnwire.data.cdnow import (
    CdnowFileMissing,
    ParsedLog,
    default_cdnow_path,
    load_cdnow,
    parse_cdnow,
    read_cdnow,
    to_rows,
)
from churnwire.data.loading import LoadReport
from churnwire.embedded.stack import Stack

SAMPLE = [
    " customer_id  date number_of_cds  dollar_value\n",
    " 00001 19970101  1   11.77\n",
    " 00002 19970112  1   12.00\n",
    " 00002 19970112  5   77.00\n",
    "00002 19970110 2 20.5\n",
    "\n",
    " 00003 19970102  2\n",
    " 00004 1997013  1   10.00\n",
    " 00004 19970230  1   10.00\n",
    " 00005 19970301  x   10.00\n",
    " 00005 19970301  -2  10.00\n",
    " 00006 19970301  1   ten\n",
    " 00006 19970301  1   -3.50\n",
    " abc 19970301  1   3.50\n",
    " 00007 19970301  1   NaN\n",
    " 00008 19980630  3   30.00 extra\n",
    " 00009 19980630  3   30.005\n",
]


def test_parse_skips_header_and_blank_lines_and_numbers_lines_from_one() -> None:
    parsed = parse_cdnow(SAMPLE)

    assert [purchase.line for purchase in parsed.purchases] == [2, 3, 4, 5, 17]
    first = parsed.purchases[0]
    assert (first.customer, first.purchased_on, first.cds, first.dollars) == (
        "00001",
        date(1997, 1, 1),
        1,
        Decimal("11.77"),
    )
    assert parsed.purchases[3].dollars == Decimal("20.50")
    assert parsed.purchases[4].dollars == Decimal("30.01")


def test_parse_reports_each_malformed_line_with_its_number_and_reason() -> None:
    malformed = dict(parse_cdnow(SAMPLE).malformed)

    assert sorted(malformed) == [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    assert "expected 4 columns, found 3" in malformed[7]
    assert "YYYYMMDD" in malformed[8]
    assert "no such date" in malformed[9]
    assert "not a whole number" in malformed[10]
    assert "negative" in malformed[11] and "CDs" in malformed[11]
    assert "not a number" in malformed[12]
    assert "negative" in malformed[13] and "dollar" in malformed[13]
    assert "customer id" in malformed[14]
    assert "not a number" in malformed[15]
    assert "found 5" in malformed[16]


def test_a_first_line_with_numbers_is_data_not_header() -> None:
    parsed = parse_cdnow(["00001 19970101 1 11.77\n", "bad\n"])

    assert [purchase.line for purchase in parsed.purchases] == [1]
    assert parsed.malformed == [(2, "expected 4 columns, found 1")]


def test_rows_map_ids_amounts_and_times() -> None:
    customers, orders = to_rows(parse_cdnow(SAMPLE))

    assert [order.order_id for order in orders] == [
        "cdnow-2",
        "cdnow-3",
        "cdnow-4",
        "cdnow-5",
        "cdnow-17",
    ]
    order = orders[2]
    assert order.customer_id == "cdnow-00002"
    assert (order.amount, order.items, order.category) == (Decimal("77.00"), 5, "music")
    assert order.created_at == datetime(1997, 1, 12, tzinfo=UTC)
    by_id = {customer.customer_id: customer for customer in customers}
    assert sorted(by_id) == ["cdnow-00001", "cdnow-00002", "cdnow-00009"]
    # Sign-up is the earliest purchase, even when the file lists it later.
    assert by_id["cdnow-00002"].signup_at == datetime(1997, 1, 10, tzinfo=UTC)
    assert by_id["cdnow-00002"].source == "cdnow"
    assert by_id["cdnow-00002"].email is None and by_id["cdnow-00002"].segment is None


def test_until_is_inclusive_and_keeps_only_customers_with_loaded_orders() -> None:
    customers, orders = to_rows(parse_cdnow(SAMPLE), until=date(1997, 1, 10))

    assert [order.order_id for order in orders] == ["cdnow-2", "cdnow-5"]
    assert [customer.customer_id for customer in customers] == ["cdnow-00001", "cdnow-00002"]


def test_the_real_file_parses_completely() -> None:
    parsed = _real_log()
    customers, orders = to_rows(parsed)

    assert parsed.malformed == []
    assert (len(orders), len(customers)) == (69_659, 23_570)
    assert min(order.created_at for order in orders) == datetime(1997, 1, 1, tzinfo=UTC)
    assert max(order.created_at for order in orders) == datetime(1998, 6, 30, tzinfo=UTC)


def test_missing_lifetimes_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    with pytest.raises(CdnowFileMissing, match="lifetimes"):
        default_cdnow_path()


def test_missing_file_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CdnowFileMissing, match="no CDNOW file"):
        load_cdnow("postgresql://unused", path=str(tmp_path / "absent.txt"))


def test_summary_lists_ten_malformed_lines_and_counts_the_rest() -> None:
    report = LoadReport(
        "cdnow",
        customers_inserted=3,
        orders_inserted=5,
        orders_present=2,
        malformed=[(line, f"reason {line}") for line in range(2, 16)],
        seconds=1.25,
    )

    text = report.summary()
    assert "inserted 3 customers and 5 orders in 1.2 s" in text
    assert "0 customers, 2 orders" in text
    assert "line 11: reason 11" in text
    assert "line 12:" not in text
    assert "... and 4 more" in text
    assert report.skipped == 2


def _query(postgres_url: str, sql: str, *args: Any) -> Any:
    async def run() -> Any:
        connection = await asyncpg.connect(postgres_url)
        try:
            return await connection.fetchval(sql, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


def _loaded_counts(postgres_url: str, until: date) -> tuple[int, int]:
    """CDNOW customers and orders in the database up to ``until``, whoever loaded them."""
    horizon = datetime(until.year, until.month, until.day, tzinfo=UTC)
    customers = _query(
        postgres_url,
        "SELECT count(*) FROM customers WHERE customer_id LIKE 'cdnow-%' AND signup_at <= $1",
        horizon,
    )
    orders = _query(
        postgres_url,
        "SELECT count(*) FROM orders WHERE order_id LIKE 'cdnow-%' AND created_at <= $1",
        horizon,
    )
    return customers, orders


@functools.cache
def _real_log() -> ParsedLog:
    return read_cdnow(default_cdnow_path())


def _expected_counts(until: date) -> tuple[int, int]:
    customers, orders = to_rows(_real_log(), until)
    return len(customers), len(orders)


@pytest.mark.parametrize("first_until, later_until", [(date(1997, 1, 5), date(1997, 1, 20))])
def test_loading_later_adds_only_what_is_new(
    stack: Stack, first_until: date, later_until: date
) -> None:
    url = stack.settings.postgres_url
    # Other tests may have loaded CDNOW into the shared database; count what is there first.
    before_customers, before_orders = _loaded_counts(url, first_until)

    first = load_cdnow(url, until=first_until, progress=False)

    expected_customers, expected_orders = _expected_counts(first_until)
    assert first.malformed == []
    assert first.customers_inserted == expected_customers - before_customers
    assert first.orders_inserted == expected_orders - before_orders
    assert _loaded_counts(url, first_until) == (expected_customers, expected_orders)

    between_customers, between_orders = _loaded_counts(url, later_until)
    later = load_cdnow(url, until=later_until, progress=False)

    expected_customers, expected_orders = _expected_counts(later_until)
    assert later.customers_inserted == expected_customers - between_customers
    assert later.orders_inserted == expected_orders - between_orders
    assert later.orders_present == between_orders
    assert _loaded_counts(url, later_until) == (expected_customers, expected_orders)

    again = load_cdnow(url, until=later_until, progress=False)

    assert (again.customers_inserted, again.orders_inserted) == (0, 0)
    assert again.skipped == expected_customers + expected_orders


def test_a_malformed_file_loads_its_good_rows_and_reports_the_bad(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    url = stack.settings.postgres_url
    log_file = tmp_path / "cdnow.txt"
    log_file.write_text("".join(SAMPLE).replace("\n", "\r\n"))
    prefix = f"cdnowtest{unique}"

    report = cdnow.load_cdnow(url, path=str(log_file), id_prefix=prefix, progress=False)

    assert (report.customers_inserted, report.orders_inserted) == (3, 5)
    assert [line for line, _ in report.malformed] == [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    assert "line 7: expected 4 columns, found 3" in report.summary()
    amount = _query(url, "SELECT amount FROM orders WHERE order_id = $1", f"{prefix}-4")
    assert amount == Decimal("77.00")
    customers = _query(
        url, "SELECT count(*) FROM customers WHERE customer_id LIKE $1", f"{prefix}-%"
    )
    assert customers == 3
