"""GET /metrics: Prometheus text format; webhook answers are counted here too."""

from __future__ import annotations

import os

from flask import Blueprint, Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from webhook_gateway.services import services
from worker.db import DeadLetter, SyncCursor
from worker.db.base import utcnow
from worker.messaging.topology import APPLY_QUEUE, DEAD_LETTER_QUEUE
from worker.metrics import DEAD_LETTERS, QUEUE_BACKLOG, WATERMARK_LAG, WEBHOOKS

__all__ = ["blueprint", "count_webhooks"]

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    _scrape_state()
    registry = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry) if registry else generate_latest()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def count_webhooks(app: Flask) -> None:
    """Count every answer of the webhook endpoint by status (2xx and errors alike)."""

    @app.after_request
    def _count(response: Response) -> Response:
        if request.blueprint == "webhooks":
            WEBHOOKS.labels(str(response.status_code)).inc()
        return response


def _scrape_state() -> None:
    svc = services()
    for queue in (APPLY_QUEUE, DEAD_LETTER_QUEUE):
        depth = svc.publisher.queue_depth(queue)
        if depth is not None:
            QUEUE_BACKLOG.labels(queue).set(depth)
    now = utcnow()
    with svc.read() as session:
        DEAD_LETTERS.set(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)
        for cursor in session.scalars(select(SyncCursor).where(SyncCursor.watermark.is_not(None))):
            assert cursor.watermark is not None
            lag = (now - cursor.watermark).total_seconds()
            WATERMARK_LAG.labels(cursor.integration_id, cursor.module).set(lag)
