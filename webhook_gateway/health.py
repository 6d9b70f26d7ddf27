"""Liveness and readiness: /healthz (process up), /readyz (database and broker)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from webhook_gateway.services import services

__all__ = ["blueprint"]

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    checks = {"database": _database_ok(), "broker": svc.publisher.ping()}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503


def _database_ok() -> bool:
    try:
        with services().read() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
