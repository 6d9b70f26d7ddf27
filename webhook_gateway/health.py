"""Liveness and readiness: /healthz (process up), /readyz (database, its schema, broker).

A database that answers but is not migrated to the schema this code needs is not
ready: every route that touches a table would answer 500.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from webhook_gateway.services import services
from worker.db import schema_is_current

__all__ = ["blueprint"]

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    database, schema = _database_checks()
    checks = {"database": database, "schema": schema, "broker": svc.publisher.ping()}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503


def _database_checks() -> tuple[bool, bool]:
    """(the database answers, its schema is at this code's head revision)."""
    try:
        with services().read() as session:
            session.execute(text("SELECT 1"))
            connection = session.connection()
            return True, schema_is_current(connection)
    except Exception:
        return False, False
