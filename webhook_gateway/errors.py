"""HTTP errors, mapped in one place: every error body is {"error", "message", "details"}.

Hostile input is stopped here too, before it reaches the database, so that it is
answered 404 or 422 and never 500: ``<int:…>`` path segments match ASCII digits
within BIGINT only (anything else is no such route: 404), NUL characters in the
path (404), the query string or a form (422) are refused for every route, and
query integers go through ``query_int``. A database that cannot answer is 503 with
``Retry-After``, for every route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from schemas import Action, Module
from schemas.payloads import BIGINT_MAX, nul_paths
from schemas.responses import ErrorBody
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.db import is_unavailable
from worker.errors import BillsyncError, DatabaseUnavailable

__all__ = [
    "ApiError",
    "BoundedIntConverter",
    "database_unavailable",
    "invalid_body",
    "numerals_up_to",
    "query_int",
    "refuse_nul_in",
    "register_error_handlers",
    "validation_details",
]

log = logging.getLogger(__name__)

_ASCII_DIGITS = frozenset("0123456789")

_UNION_TAGS = frozenset({*(m.value for m in Module), Action.DELETED.value})
# The error type the event union reports for a missing or unknown module.
_UNKNOWN_MODULE = "invalid_module"


class ApiError(BillsyncError):
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
        if error["type"] == _UNKNOWN_MODULE:
            # Raised by the union itself, so located at the event: the field is module.
            loc.append("module")
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


def refuse_nul_in(body: BaseModel) -> None:
    """422 naming each field of a parsed body whose text holds a NUL character: no
    database column can store one (PostgreSQL refuses it in text and JSON alike)."""
    found = nul_paths(body.model_dump(mode="json", by_alias=True))
    if found:
        raise ApiError(
            422,
            "validation_failed",
            "the request does not match the contract",
            details=[
                {"path": path, "message": "must not contain a NUL character", "type": "nul"}
                for path in found
            ],
        )


def query_int(name: str, default: int, *, low: int = 0, high: int = BIGINT_MAX) -> int:
    """The query parameter ``name`` as an integer in [low, high], else 422.

    ASCII digits only: ``str.isdigit`` accepts "²" and "١", which ``int`` turns
    into a ValueError or a number nobody wrote.
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    value = parse_int(raw, low=low, high=high)
    if value is None:
        raise ApiError(
            422, "invalid_query", f"{name} must be an integer from {low} to {high}", {"name": name}
        )
    return value


def parse_int(raw: str, *, low: int = 0, high: int = BIGINT_MAX) -> int | None:
    """``raw`` as an integer in [low, high] if it is ASCII digits, else None."""
    # len check first: int() of thousands of digits is slow and may raise.
    if not raw or len(raw) > len(str(high)) or not set(raw) <= _ASCII_DIGITS:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def numerals_up_to(limit: int) -> str:
    """A regex matching the ASCII decimal numerals from 0 to ``limit``: shorter ones,
    then those of its length that are smaller at the first digit that differs."""
    digits = str(limit)
    shorter = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    smaller = [
        f"{digits[:i]}[0-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}"
        for i, d in enumerate(digits)
        if d != "0"
    ]
    return "(?:" + "|".join([*shorter, *smaller, digits]) + ")"


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` for row ids: ASCII digits within BIGINT, so an id the database
    cannot hold is no such route (404) rather than an overflow (500).

    The bound is in the regex, not only in ``to_python``: werkzeug answers 405, not
    404, when a converter refuses a path another method's rule matches.
    """

    regex = numerals_up_to(BIGINT_MAX)

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", BIGINT_MAX)
        super().__init__(map, *args, **kwargs)


def database_unavailable() -> ApiError:
    return ApiError(
        503,
        "database_unavailable",
        "the database is not reachable; retry later",
        headers={"Retry-After": str(services().settings.retry_after_seconds)},
    )


Answer = (
    tuple[type[BillsyncError], int, str]
    | tuple[type[BillsyncError], int, str, Callable[[Any], str]]
)


@contextmanager
def answering(*answers: Answer) -> Iterator[None]:
    """Turn the domain's exceptions into JSON errors: ``(exception, status, code)``,
    checked in order (put subclasses first). A fourth element words the message
    (the domain states facts; how to fix them through the API is the gateway's to say),
    else it is the exception's own."""
    try:
        yield
    except BillsyncError as exc:
        for kind, status, code, *wording in answers:
            if isinstance(exc, kind):
                message = wording[0](exc) if wording else str(exc)
                raise ApiError(status, code, message) from exc
        raise


def _json_error(error: ApiError) -> tuple[Response, int]:
    body = ErrorBody(error=error.code, message=error.message, details=error.details)
    return respond(body, error.status, error.headers)


# The form fields of a form post (the status page's) are checked; other bodies are
# left unread here.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_nul_in_request() -> None:
    if "\x00" in request.path:
        raise ApiError(404, "not_found", "no such resource (the path holds a NUL character)")
    # Most requests (webhooks among them) have no query string and no form: nothing
    # to parse for that.
    sources = [("query", request.args)] if request.query_string else []
    if request.mimetype in _FORM_TYPES:
        sources.append(("form", request.form))
    for where, values in sources:
        bad = sorted({k for k, v in values.items(multi=True) if "\x00" in k or "\x00" in v})
        if bad:
            raise ApiError(
                422,
                "invalid_query" if where == "query" else "validation_failed",
                f"{where} parameters must not contain a NUL character",
                details=[
                    {"path": name.replace("\x00", "\\x00"), "message": "holds a NUL character"}
                    for name in bad
                ],
            )


def register_error_handlers(app: Flask) -> None:
    """JSON errors for every route, and the input guards every route shares.

    Call before registering blueprints: the bounded ``int`` converter applies to
    the rules added after it.
    """
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(_refuse_nul_in_request)

    @app.errorhandler(DatabaseUnavailable)
    def _database_down(error: DatabaseUnavailable) -> tuple[Response, int]:
        return _json_error(database_unavailable())

    @app.errorhandler(SQLAlchemyError)
    def _database_error(error: SQLAlchemyError) -> tuple[Response, int]:
        if not is_unavailable(error):
            raise error  # a bug, not an outage: a 500 with its traceback in the log
        log.warning("database unavailable: %s", error)
        return _json_error(database_unavailable())

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return _json_error(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        code = (error.name or "error").lower().replace(" ", "_")
        return _json_error(ApiError(error.code or 500, code, error.description or code))
