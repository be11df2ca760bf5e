"""Kafka client settings shared by every producer, consumer and admin client churnwire makes."""

from __future__ import annotations

from typing import Any

from churnwire.config import Settings


def confluent_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings for the configured cluster (security included)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        config["sasl.password"] = settings.kafka_sasl_password
    config.update(overrides)
    return config


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured cluster (security included)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_security_protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        config["ssl_context"] = create_ssl_context()
    return config
