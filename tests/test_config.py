"""Configuration: CHURNWIRE_* variables are validated with errors that name the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from churnwire.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CHURNWIRE_REDIS_URL", "localhost:6379", "redis://"),
        ("CHURNWIRE_POSTGRES_URL", "mysql://db/x", "postgresql://"),
        ("CHURNWIRE_KAFKA_BOOTSTRAP", "broker", "host:port"),
        ("CHURNWIRE_KAFKA_PORT", "abc", "integer"),
        ("CHURNWIRE_REDIS_PORT", "80", "between 1024 and 65535"),
        ("CHURNWIRE_TOPIC_PARTITIONS", "0", "positive"),
        ("CHURNWIRE_KAFKA_SECURITY_PROTOCOL", "TLS", "SASL_SSL"),
        ("CHURNWIRE_CDC_SLOT", "Bad-Slot", "identifier"),
        ("CHURNWIRE_ALERT_THRESHOLD", "1.5", "between 0 and 1"),
        ("CHURNWIRE_CHALLENGER_SHARE", "half", "number"),
        ("CHURNWIRE_GATEWAY_PORT", "80", "between 1024 and 65535"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert expected in str(raised.value)


def test_configured_services_are_external() -> None:
    settings = load_settings(
        {
            "CHURNWIRE_POSTGRES_URL": "postgresql://app:secret@db.example:5432/shop",
            "CHURNWIRE_KAFKA_BOOTSTRAP": "b-1.msk:9094, b-2.msk:9094",
        }
    )
    assert settings.postgres_external and settings.kafka_external
    assert not settings.redis_external
    assert settings.kafka_bootstrap == "b-1.msk:9094,b-2.msk:9094"


def test_cli_exits_2_with_the_variable_in_the_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "churnwire", "status"],
        env={**os.environ, "CHURNWIRE_REDIS_URL": "not a url"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CHURNWIRE_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
