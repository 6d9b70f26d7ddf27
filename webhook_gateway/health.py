"""Liveness and readiness: /healthz (process up), /readyz (database, its schema, broker).

A database that answers but is not migrated to the schema this code needs is not
ready: every route that touches a table would answer 500.
"""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import text

from schemas.responses import Health, Readiness, ReadinessChecks
from webhook_gateway.openapi import documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.db import schema_is_current

__all__ = ["blueprint"]

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@documented({200: Health}, authenticated=False, database=False)
def healthz() -> tuple[Response, int]:
    """Liveness: the process answers."""
    return respond(Health())


@blueprint.get("/readyz")
@documented({200: Readiness, 503: Readiness}, authenticated=False)
def readyz() -> tuple[Response, int]:
    """Readiness: the database answers at this code's schema, and the broker answers."""
    svc = services()
    database, schema = _database_checks()
    checks = ReadinessChecks(database=database, schema_=schema, broker=svc.publisher.ping())
    ready = checks.database and checks.schema_ and checks.broker
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return respond(body, 200 if ready else 503)


def _database_checks() -> tuple[bool, bool]:
    """(the database answers, its schema is at this code's head revision)."""
    try:
        with services().read() as session:
            session.execute(text("SELECT 1"))
            connection = session.connection()
            return True, schema_is_current(connection)
    except Exception:
        return False, False
