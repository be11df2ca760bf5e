"""The published OpenAPI document matches the gateway's behaviour: schemathesis finds nothing.

Runs the schemathesis CLI against the session's gateway with every check: no 5xx, every
status code and response schema as documented, invalid input refused, valid input accepted.
The endless SSE route is left out; ``POST /v1/events`` is safe to fuzz here (events for
made-up customers are folded into the test stack only).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import redis

from churnwire.embedded.stack import Stack
from churnwire.state.features import CustomerProfile, OrderFact, WebFact
from tests.gateway_helpers import write_customer

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _schemathesis(
    stack: Stack, key: str, tmp_path: Path, options: list[str], config: Path | None = None
) -> str:
    url = f"http://127.0.0.1:{stack.settings.gateway_port}/openapi.json"
    configured = ["--config-file", str(config)] if config else []
    result = subprocess.run(
        [str(SCHEMATHESIS), "--no-color", *configured, "run", url, "--checks", "all",
         "-H", f"Authorization: Bearer {key}", "--seed", "1", *options],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


def test_schemathesis_finds_no_server_error_or_schema_violation(
    stack: Stack, write_key: str, tmp_path: Path
) -> None:
    output = _schemathesis(stack, write_key, tmp_path,
                           ["--max-examples", "40", "--exclude-path", "/v1/alerts/stream"])
    assert "Tested: 8" in output


def test_schemathesis_validates_a_real_customer_answer(
    stack: Stack, write_key: str, unique: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    write_customer(
        client, CustomerProfile(unique, signup_at=800_000_000_000_000, segment="vip"),
        [OrderFact(f"{unique}-o", 850_000_000_000_000, 12.5, 1, "completed")],
        [WebFact(f"{unique}-w", 850_000_000_000_000, "page_view")],
        {"probability": "0.9", "model_version": "v1", "risk_band": "high",
         "scored_at": "850000000000000"},
    )
    client.close()
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.customer_id" = "{unique}"\n')
    _schemathesis(stack, write_key, tmp_path,
                  ["--max-examples", "20", "--include-path", "/v1/customers/{customer_id}"],
                  config)
    reply = httpx.get(f"http://127.0.0.1:{stack.settings.gateway_port}/metrics").text
    assert 'route="/v1/customers/{customer_id}",status="200"' in reply
