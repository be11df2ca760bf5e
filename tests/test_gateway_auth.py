"""API keys, scopes, revocation, the per-key rate limit and TLS of the running gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from churnwire.embedded.process import wait_for_exit
from churnwire.embedded.stack import Stack
from churnwire.gateway.keys import create_api_key, hash_key, revoke_api_keys
from churnwire.state.layout import API_KEYS
from tests.conftest import SLOT
from tests.gateway_helpers import error_of

V1_ROUTES = [
    ("GET", "/v1/customers/someone"),
    ("POST", "/v1/customers/lookup"),
    ("GET", "/v1/alerts"),
    ("GET", "/v1/alerts/stream"),
    ("POST", "/v1/events"),
]
LIMITED_GATEWAY_PORT = 8181 + 100 * SLOT


def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(
    stack: Stack, redis_client: redis.Redis, unique: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "churnwire", "keys", "create", "--name", unique,
         "--scope", "write"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    key = result.stdout.strip()
    assert result.stdout == key + "\n" and len(key) > 32
    stored = redis_client.hgetall(API_KEYS)
    assert hash_key(key) in stored and unique in stored[hash_key(key)]
    assert not any(key in field or key in value for field, value in stored.items())
    assert key not in result.stderr


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
def test_every_v1_route_needs_a_known_bearer_key(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer cw_not-a-real-key"}):
        response = anonymous.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (headers, response.text)
        assert error_of(response)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_read_key_may_not_post_events_and_a_write_key_may_read(
    anonymous: httpx.Client, read_key: str, write_key: str, unique: str
) -> None:
    event = {"events": [{"customer_id": unique, "type": "page_view"}]}
    refused = anonymous.post("/v1/events", json=event,
                             headers={"Authorization": f"Bearer {read_key}"})
    assert refused.status_code == 403 and "write" in error_of(refused)
    read = anonymous.get(f"/v1/customers/{unique}",
                         headers={"Authorization": f"Bearer {write_key}"})
    assert read.status_code == 404


def test_a_revoked_key_is_refused_within_seconds(
    stack: Stack, anonymous: httpx.Client, unique: str
) -> None:
    key = create_api_key(stack.settings.redis_url, unique, "read")
    headers = {"Authorization": f"Bearer {key}"}
    assert anonymous.get("/v1/alerts", headers=headers).status_code == 200
    assert revoke_api_keys(stack.settings.redis_url, unique) == 1
    deadline = time.monotonic() + 15
    while anonymous.get("/v1/alerts", headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.5)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "gateway.crt", directory / "gateway.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def limited_gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second gateway process: 5 requests/s per key, TLS with a self-signed certificate."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    env = {**os.environ, "CHURNWIRE_GATEWAY_PORT": str(LIMITED_GATEWAY_PORT),
           "CHURNWIRE_GATEWAY_RATE_LIMIT": "5",
           "CHURNWIRE_GATEWAY_TLS_CERT": str(cert), "CHURNWIRE_GATEWAY_TLS_KEY": str(key)}
    process = subprocess.Popen([sys.executable, "-m", "churnwire", "gateway"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{LIMITED_GATEWAY_PORT}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", verify=False, timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the TLS gateway exited"
                assert time.monotonic() < deadline, "the TLS gateway did not start"
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        wait_for_exit(process.pid, 30)


def test_tls_is_served_and_plain_http_is_not(limited_gateway: str) -> None:
    assert httpx.get(f"{limited_gateway}/healthz", verify=False).json() == {"status": "ok"}
    with pytest.raises(httpx.TransportError):
        httpx.get(limited_gateway.replace("https", "http") + "/healthz", timeout=5)


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_do_not(
    limited_gateway: str, stack: Stack, unique: str
) -> None:
    busy = create_api_key(stack.settings.redis_url, f"{unique}-busy", "read")
    calm = create_api_key(stack.settings.redis_url, f"{unique}-calm", "read")
    with httpx.Client(base_url=limited_gateway, verify=False, timeout=10) as client:
        statuses = [client.get("/v1/alerts", headers={"Authorization": f"Bearer {busy}"})
                    for _ in range(12)]
        limited = [r for r in statuses if r.status_code == 429]
        assert 5 <= sum(r.status_code == 200 for r in statuses) <= 7
        assert limited, "no request was limited"
        assert int(limited[0].headers["retry-after"]) >= 1
        assert "rate limit" in error_of(limited[0])
        calm_reply = client.get("/v1/alerts", headers={"Authorization": f"Bearer {calm}"})
        assert calm_reply.status_code == 200
        metrics = client.get("/metrics").text
    counted = [line for line in metrics.splitlines()
               if line.startswith("churnwire_gateway_rate_limited_total ")]
    assert float(counted[0].split()[1]) == len(limited)
