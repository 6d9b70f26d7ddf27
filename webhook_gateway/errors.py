"""HTTP errors, mapped in one place: every error body is {"error", "message", "details"}."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from schemas import Module

__all__ = ["ApiError", "invalid_body", "register_error_handlers", "validation_details"]

_UNION_TAGS = frozenset({*(m.value for m in Module), "deleted"})


class ApiError(Exception):
    """An error answer: status, a stable code, a human message, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"path": "data.minutes", "message": …}]``.

    The union tag pydantic puts first in the location (the module name) is dropped,
    so the path names the field in the request body.
    """
    details = []
    for error in exc.errors(include_url=False, include_input=False):
        raw = [str(p) for p in error["loc"]]
        # A union tag stands at the start of an event's location (after the index in arrays).
        loc = [
            part
            for i, part in enumerate(raw)
            if not (part in _UNION_TAGS and (i == 0 or raw[i - 1].isdigit()))
        ]
        details.append({"path": ".".join(loc), "message": error["msg"], "type": error["type"]})
    return details


def invalid_body(exc: ValidationError, what: str) -> ApiError:
    """400 when pydantic could not parse the JSON at all, else 422 with field paths."""
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return ApiError(400, "malformed_json", "the body is not valid JSON")
    return ApiError(
        422,
        "validation_failed",
        f"the {what} does not match the contract",
        details=validation_details(exc),
    )


@contextmanager
def answering(*statuses: tuple[type[Exception], int, str]) -> Iterator[None]:
    """Turn the domain's exceptions into JSON errors: ``(exception, status, code)``,
    checked in order (put subclasses first)."""
    try:
        yield
    except Exception as exc:
        for kind, status, code in statuses:
            if isinstance(exc, kind):
                raise ApiError(status, code, str(exc)) from exc
        raise


def _json_error(error: ApiError) -> tuple[Response, int]:
    response = jsonify({"error": error.code, "message": error.message, "details": error.details})
    for name, value in error.headers.items():
        response.headers[name] = value
    return response, error.status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return _json_error(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        code = (error.name or "error").lower().replace(" ", "_")
        return _json_error(ApiError(error.code or 500, code, error.description or code))
