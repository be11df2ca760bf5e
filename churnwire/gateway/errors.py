"""Errors the gateway answers with: always JSON ``{"error": message}``, never a trace."""

from __future__ import annotations

import json

from starlette.responses import Response


class ApiError(Exception):
    """A request the gateway refuses, with the status and message to answer it with."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON error response every refusal uses."""
    body = json.dumps({"error": message}).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")
