"""GET /metrics: Prometheus text format; webhook answers are counted here too.

Under ``billsync gateway`` the counters are those of every gunicorn process (see
``worker.metrics.shared_across_processes``); the state is read at each scrape, as
``billsync worker`` reads it.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webhook_gateway.openapi import Media, documented
from webhook_gateway.services import services
from worker.messaging import StateCollector
from worker.metrics import WEBHOOKS, registry_with_state

__all__ = ["blueprint", "count_webhooks"]

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@documented({200: Media("text/plain", "Prometheus text format")}, authenticated=False)
def metrics() -> Response:
    """Prometheus metrics: webhook answers, applies, queue depths, the pull's state."""
    svc = services()
    state = StateCollector(svc.sessions, svc.publisher.queue_depth)
    return Response(generate_latest(registry_with_state(state)), content_type=CONTENT_TYPE_LATEST)


def count_webhooks(app: Flask) -> None:
    """Count every answer of the webhook endpoint by status (2xx and errors alike)."""

    @app.after_request
    def _count(response: Response) -> Response:
        if request.blueprint == "webhooks":
            WEBHOOKS.labels(str(response.status_code)).inc()
        return response
