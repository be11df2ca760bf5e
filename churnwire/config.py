"""All configuration, read from ``CHURNWIRE_*`` environment variables in one place.

Every variable is validated when :func:`load_settings` runs; a bad value raises
:class:`ConfigError` naming the variable, so the CLI can fail at start-up with a clear message.
A service whose URL is given (``CHURNWIRE_POSTGRES_URL``, ``CHURNWIRE_REDIS_URL``,
``CHURNWIRE_KAFKA_BOOTSTRAP``) is used as given and never started locally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

PREFIX = "CHURNWIRE_"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration variable holds a value churnwire cannot use."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Validated configuration for every churnwire process."""

    home: Path
    postgres_url: str
    postgres_external: bool
    redis_url: str
    redis_external: bool
    kafka_bootstrap: str
    kafka_external: bool
    kafka_security_protocol: str
    kafka_sasl_mechanism: str | None
    kafka_sasl_username: str | None
    kafka_sasl_password: str | None
    postgres_port: int
    redis_port: int
    kafka_port: int
    topic_prefix: str
    topic_partitions: int
    cdc_poll_interval_ms: int
    cdc_slot: str
    cdc_publication: str
    cdc_metrics_port: int
    java_heap_mb: int
    worker_metrics_port: int
    worker_group: str
    worker_batch_size: int
    state_ttl_days: int
    clock: str
    model_dir: Path
    alert_threshold: float
    alert_hysteresis: float
    challenger_share: float
    label_horizon_days: int
    sweep_interval_days: int
    scoring: bool
    gateway_host: str
    gateway_port: int
    gateway_rate_limit: float
    gateway_max_body_bytes: int
    gateway_workers: int = 1
    gateway_tls_cert: Path | None = None
    gateway_tls_key: Path | None = None
    metrics_host: str = "127.0.0.1"
    insights: InsightSettings | None = None

    @property
    def insight(self) -> InsightSettings:
        """The insight worker's settings (defaults when built without them, as in tests)."""
        return self.insights if self.insights is not None else load_insight_settings(
            {}, self.home
        )

    @property
    def orders_topic(self) -> str:
        """Debezium topic of the ``orders`` table."""
        return f"{self.topic_prefix}.public.orders"

    @property
    def customers_topic(self) -> str:
        """Debezium topic of the ``customers`` table."""
        return f"{self.topic_prefix}.public.customers"

    @property
    def fence_topic(self) -> str:
        """Topic of logical decoding messages (the fences of ``status --wait-idle``)."""
        return f"{self.topic_prefix}.message"

    @property
    def heartbeat_topic(self) -> str:
        """Topic Debezium writes its heartbeats to."""
        return f"__debezium-heartbeat.{self.topic_prefix}"


def _port(value: str) -> int:
    port = int(value)
    if not 1024 <= port <= 65535:
        raise ValueError(f"expected a port between 1024 and 65535, got {value!r}")
    return port


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return number


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"expected a number between 0 and 1, got {value!r}")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return number


def _listen_host(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.:\-]+$", value):
        raise ValueError(f"expected a host name or address, got {value!r}")
    return value


def _url_with_scheme(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            expected = " or ".join(f"{s}://host:port/..." for s in schemes)
            raise ValueError(f"expected {expected}, got {value!r}")
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
        return value

    return parse


_BOOTSTRAP = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$")


def _bootstrap(value: str) -> str:
    servers = [s.strip() for s in value.split(",") if s.strip()]
    if not servers or not all(_BOOTSTRAP.match(s) for s in servers):
        raise ValueError(f"expected host:port[,host:port...], got {value!r}")
    return ",".join(servers)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return value

    return parse


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"expected a lower-case SQL identifier, got {value!r}")
    return value


_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")


def _topic_prefix(value: str) -> str:
    if not _TOPIC_PREFIX.match(value):
        raise ValueError(f"expected letters, digits, '_' or '-', got {value!r}")
    return value


class _Reader:
    """Reads one variable at a time and turns any parse failure into a ConfigError."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def is_set(self, name: str) -> bool:
        return bool(self._environ.get(PREFIX + name, "").strip())

    def get(self, name: str, parse: Callable[[str], T], default: str) -> T:
        variable = PREFIX + name
        raw = self._environ.get(variable, "").strip() or default
        try:
            return parse(raw)
        except ValueError as error:
            message = str(error)
            if message.startswith("invalid literal"):
                message = f"expected an integer, got {raw!r}"
            elif message.startswith("could not convert"):
                message = f"expected a number, got {raw!r}"
            raise ConfigError(variable, message) from None

    def optional(self, name: str) -> str | None:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or None


def _tls_files(read: _Reader) -> tuple[Path | None, Path | None]:
    """The gateway's certificate and key: both or neither, and both readable files."""
    cert, key = read.optional("GATEWAY_TLS_CERT"), read.optional("GATEWAY_TLS_KEY")
    if (cert is None) != (key is None):
        missing = "CHURNWIRE_GATEWAY_TLS_KEY" if key is None else "CHURNWIRE_GATEWAY_TLS_CERT"
        raise ConfigError(missing, "set both CHURNWIRE_GATEWAY_TLS_CERT and _KEY, or neither")
    paths = []
    for name, value in (("GATEWAY_TLS_CERT", cert), ("GATEWAY_TLS_KEY", key)):
        if value is not None and not Path(value).is_file():
            raise ConfigError(PREFIX + name, f"no such file: {value!r}")
        paths.append(Path(value).absolute() if value is not None else None)
    return paths[0], paths[1]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate all ``CHURNWIRE_*`` variables (from ``os.environ`` by default)."""
    read = _Reader(os.environ if environ is None else environ)
    home = Path(read.get("HOME", str, ".churnwire")).absolute()
    postgres_port = read.get("POSTGRES_PORT", _port, "54329")
    redis_port = read.get("REDIS_PORT", _port, "63790")
    kafka_port = read.get("KAFKA_PORT", _port, "19092")
    postgres_default = f"postgresql://postgres@127.0.0.1:{postgres_port}/churnwire"
    tls_cert, tls_key = _tls_files(read)
    return Settings(
        home=home,
        postgres_url=read.get(
            "POSTGRES_URL", _url_with_scheme("postgresql", "postgres"), postgres_default
        ),
        postgres_external=read.is_set("POSTGRES_URL"),
        redis_url=read.get(
            "REDIS_URL", _url_with_scheme("redis", "rediss"), f"redis://127.0.0.1:{redis_port}/0"
        ),
        redis_external=read.is_set("REDIS_URL"),
        kafka_bootstrap=read.get("KAFKA_BOOTSTRAP", _bootstrap, f"127.0.0.1:{kafka_port}"),
        kafka_external=read.is_set("KAFKA_BOOTSTRAP"),
        kafka_security_protocol=read.get(
            "KAFKA_SECURITY_PROTOCOL",
            _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
            "PLAINTEXT",
        ),
        kafka_sasl_mechanism=read.optional("KAFKA_SASL_MECHANISM"),
        kafka_sasl_username=read.optional("KAFKA_SASL_USERNAME"),
        kafka_sasl_password=read.optional("KAFKA_SASL_PASSWORD"),
        postgres_port=postgres_port,
        redis_port=redis_port,
        kafka_port=kafka_port,
        topic_prefix=read.get("TOPIC_PREFIX", _topic_prefix, "shop"),
        topic_partitions=read.get("TOPIC_PARTITIONS", _positive_int, "4"),
        cdc_poll_interval_ms=read.get("CDC_POLL_INTERVAL_MS", _positive_int, "50"),
        cdc_slot=read.get("CDC_SLOT", _identifier, "churnwire"),
        cdc_publication=read.get("CDC_PUBLICATION", _identifier, "churnwire"),
        cdc_metrics_port=read.get("CDC_METRICS_PORT", _port, "9466"),
        java_heap_mb=read.get("JAVA_HEAP_MB", _positive_int, "512"),
        worker_metrics_port=read.get("WORKER_METRICS_PORT", _port, "9467"),
        worker_group=read.get("WORKER_GROUP", _topic_prefix, "churnwire-features"),
        worker_batch_size=read.get("WORKER_BATCH_SIZE", _positive_int, "1000"),
        state_ttl_days=read.get("STATE_TTL_DAYS", _non_negative_int, "0"),
        clock=read.get("CLOCK", _choice("event", "wall"), "event"),
        model_dir=Path(read.get("MODEL_DIR", str, str(home / "models"))).absolute(),
        alert_threshold=read.get("ALERT_THRESHOLD", _fraction, "0.8"),
        alert_hysteresis=read.get("ALERT_HYSTERESIS", _fraction, "0.05"),
        challenger_share=read.get("CHALLENGER_SHARE", _fraction, "0"),
        label_horizon_days=read.get("LABEL_HORIZON_DAYS", _positive_int, "90"),
        sweep_interval_days=read.get("SWEEP_INTERVAL_DAYS", _positive_int, "7"),
        scoring=read.get("SCORING", _choice("on", "off"), "on") == "on",
        gateway_host=read.get("GATEWAY_HOST", _listen_host, "127.0.0.1"),
        gateway_port=read.get("GATEWAY_PORT", _port, "8080"),
        gateway_rate_limit=read.get("GATEWAY_RATE_LIMIT", _positive_float, "2000"),
        gateway_max_body_bytes=read.get("GATEWAY_MAX_BODY_BYTES", _positive_int, "1048576"),
        gateway_workers=read.get("GATEWAY_WORKERS", _positive_int, "1"),
        gateway_tls_cert=tls_cert,
        gateway_tls_key=tls_key,
        metrics_host=read.get("METRICS_HOST", _listen_host, "127.0.0.1"),
        insights=_insight_settings(read, home),
    )


@dataclass(frozen=True)
class InsightSettings:
    """Settings of the insight worker, its model server, knowledge base and insight store."""

    enabled: bool
    llm_model: str
    llm_api_base: str | None
    llm_external: bool
    llm_port: int
    llm_threads: int
    llm_timeout_seconds: float
    llm_max_tokens: int
    llm_json_mode: str
    mongo_url: str
    mongo_external: bool
    mongo_port: int
    mongo_database: str
    qdrant_url: str | None
    kb_path: Path
    kb_top_k: int
    group: str
    metrics_port: int
    concurrency: int
    rate_per_minute: int
    daily_tokens: int
    daily_cost: float
    retries: int
    breaker_failures: int
    breaker_seconds: float
    cache_hours: float
    prompt: str | None


EMBEDDED_LLM_MODEL = "openai/smollm2"


def _model_name(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.:/@\-]{1,200}$", value):
        raise ValueError(f"expected a litellm model name such as openai/gpt-4o-mini, got {value!r}")
    return value


def _prompt_version(value: str) -> str:
    if not re.match(r"^[a-z0-9][a-z0-9_\-]{0,40}$", value):
        raise ValueError(f"expected a prompt version such as v2-grounded, got {value!r}")
    return value


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return number


def _insight_settings(read: _Reader, home: Path) -> InsightSettings:
    llm_port = read.get("LLM_PORT", _port, "18090")
    mongo_port = read.get("MONGO_PORT", _port, "27117")
    # The embedded model server runs only when neither a model nor an API base is configured.
    llm_external = read.is_set("LLM_MODEL") or read.is_set("LLM_API_BASE")
    default_base = "" if llm_external else f"http://127.0.0.1:{llm_port}/v1"
    api_base = read.get("LLM_API_BASE", _optional_url("http", "https"), default_base)
    return InsightSettings(
        enabled=read.get("INSIGHTS", _choice("on", "off"), "on") == "on",
        llm_model=read.get("LLM_MODEL", _model_name, EMBEDDED_LLM_MODEL),
        llm_api_base=api_base or None,
        llm_external=llm_external,
        llm_port=llm_port,
        llm_threads=read.get("LLM_THREADS", _positive_int, "1"),
        llm_timeout_seconds=read.get("LLM_TIMEOUT_SECONDS", _positive_float, "90"),
        llm_max_tokens=read.get("LLM_MAX_TOKENS", _positive_int, "384"),
        llm_json_mode=read.get("LLM_JSON_MODE", _choice("schema", "object", "off"), "schema"),
        mongo_url=read.get(
            "MONGO_URL", _url_with_scheme("mongodb", "mongodb+srv"),
            f"mongodb://127.0.0.1:{mongo_port}/",
        ),
        mongo_external=read.is_set("MONGO_URL"),
        mongo_port=mongo_port,
        mongo_database=read.get("MONGO_DATABASE", _identifier, "churnwire"),
        qdrant_url=read.get("QDRANT_URL", _optional_url("http", "https"), "") or None,
        kb_path=home / "kb",
        kb_top_k=read.get("KB_TOP_K", _positive_int, "3"),
        group=read.get("INSIGHTS_GROUP", _topic_prefix, "churnwire-insights"),
        metrics_port=read.get("INSIGHTS_METRICS_PORT", _port, "9468"),
        concurrency=read.get("INSIGHTS_CONCURRENCY", _positive_int, "1"),
        rate_per_minute=read.get("INSIGHTS_RATE_PER_MINUTE", _positive_int, "60"),
        daily_tokens=read.get("INSIGHTS_DAILY_TOKENS", _non_negative_int, "2000000"),
        daily_cost=read.get("INSIGHTS_DAILY_COST", _non_negative_float, "5"),
        retries=read.get("INSIGHTS_RETRIES", _non_negative_int, "2"),
        breaker_failures=read.get("INSIGHTS_BREAKER_FAILURES", _positive_int, "3"),
        breaker_seconds=read.get("INSIGHTS_BREAKER_SECONDS", _positive_float, "30"),
        cache_hours=read.get("INSIGHTS_CACHE_HOURS", _non_negative_float, "24"),
        prompt=read.get("INSIGHTS_PROMPT", _optional(_prompt_version), "") or None,
    )


def _optional(parse: Callable[[str], str]) -> Callable[[str], str]:
    return lambda value: parse(value) if value else value


def _optional_url(*schemes: str) -> Callable[[str], str]:
    return _optional(_url_with_scheme(*schemes))


def load_insight_settings(environ: Mapping[str, str], home: Path) -> InsightSettings:
    """The insight settings alone, from ``environ``."""
    return _insight_settings(_Reader(environ), home)


def redact_url(url: str) -> str:
    """The URL with its password masked, for status output and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
