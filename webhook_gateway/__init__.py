"""The HTTP side: webhook ingress, management and read API, health.

``create_app(settings)`` is the application factory; tests and the CLI pass in
a publisher and a sessionmaker of their own where they need to.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from webhook_gateway import (
    billing,
    billing_documents,
    dead_letters,
    health,
    invoicing,
    lifecycle,
    management,
    metrics,
    openapi,
    read_api,
    security,
    status_page,
    tokens,
    webhooks,
)
from webhook_gateway.errors import register_error_handlers
from webhook_gateway.services import Services
from worker.db import make_engine, make_sessionmaker
from worker.errors import BrokerUnavailable
from worker.messaging import Publisher, build_topology
from worker.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    publisher: Publisher | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if sessions is None:
        sessions = make_sessionmaker(make_engine(settings))
    if publisher is None:
        publisher = Publisher(settings, build_topology(settings))
    try:
        publisher.declare_topology()
    except BrokerUnavailable as exc:
        # Not fatal: /readyz reports it and the first publish declares again.
        log.warning("broker not reachable at start, topology not declared yet: %s", exc)
    app.extensions["billsync"] = Services(settings, sessions, publisher)
    register_error_handlers(app)
    for blueprint in (
        webhooks.blueprint,
        management.blueprint,
        lifecycle.blueprint,
        dead_letters.blueprint,
        billing.blueprint,
        billing_documents.blueprint,
        read_api.blueprint,
        invoicing.blueprint,
        health.blueprint,
        status_page.blueprint,
        tokens.blueprint,
        security.blueprint,
        metrics.blueprint,
        openapi.blueprint,
    ):
        app.register_blueprint(blueprint)
    metrics.count_webhooks(app)
    return app
