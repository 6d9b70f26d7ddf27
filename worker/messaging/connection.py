"""kombu connections built from Settings: RabbitMQ with confirms, or the embedded one."""

from __future__ import annotations

from kombu.connection import Connection

from worker.messaging.embedded import EmbeddedTransport
from worker.settings import Settings

__all__ = ["broker_connection"]


def broker_connection(settings: Settings, *, write_timeout: float | None = None) -> Connection:
    """A new, not yet connected kombu Connection for ``settings.broker_url``.

    On RabbitMQ every publish on it waits for the broker's confirm (py-amqp's
    ``confirm_publish``), so "published" means "durably accepted". ``write_timeout``
    bounds a socket write (a broker that stopped reading), on RabbitMQ.
    """
    if settings.is_embedded_broker:
        settings.ensure_data_dir()
        # kombu ignores ``transport=`` when the URL names one, so pass the bare
        # SQLAlchemy URL ("sqla+sqlite:///x" -> "sqlite:///x").
        return Connection(
            settings.broker_url.split("+", 1)[1],
            transport=EmbeddedTransport,
            transport_options={"polling_interval": settings.embedded_polling_interval_seconds},
        )
    options: dict[str, object] = {"confirm_publish": True}
    if write_timeout is not None:
        options["write_timeout"] = write_timeout
    return Connection(
        settings.broker_url,
        connect_timeout=settings.publish_connect_timeout_seconds,
        transport_options=options,
        heartbeat=30,
    )
