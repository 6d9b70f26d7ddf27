"""kombu's SQLAlchemy/SQLite transport, made safe for the embedded mode.

The stock transport marks a delivered row invisible and never deletes it: acked
messages pile up forever, and a message in flight when the process dies is never
delivered again. This subclass deletes a row when its message is acked or
rejected, and ``recover_in_flight`` makes invisible rows visible again at start
(sound because in the embedded mode one process is the only consumer). It also
keeps ``polling_interval`` out of ``create_engine``, which the stock transport
passes every transport option to.

Use it with ``Connection(url, transport=EmbeddedTransport)`` for ``sqla+`` URLs.
"""

from __future__ import annotations

import json
from queue import Empty
from typing import Any

from kombu.transport import sqlalchemy as sqla
from sqlalchemy import create_engine, event, text

__all__ = ["EmbeddedTransport", "recover_in_flight"]

_ROW_KEY = "billsync_row_id"
_NOT_ENGINE_OPTIONS = ("polling_interval",)


class EmbeddedChannel(sqla.Channel):
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = dict(conninfo.transport_options)
        for key in _NOT_ENGINE_OPTIONS:
            options.pop(key, None)
        conninfo_options = conninfo.transport_options
        try:
            conninfo.transport_options = options
            return _with_sqlite_pragmas(super()._engine_from_config())
        finally:
            conninfo.transport_options = conninfo_options

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        obj = self._get_or_create(queue)
        session = self.session
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            msg = (
                session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id)
                .filter(self.message_cls.visible.is_(True))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            msg.visible = False
            payload: dict[str, Any] = json.loads(msg.payload)
            payload["properties"]["delivery_info"][_ROW_KEY] = msg.id
            return payload
        finally:
            session.commit()

    def _forget(self, delivery_tag: Any) -> None:
        message = self.qos.get(delivery_tag)
        row_id = message.delivery_info.get(_ROW_KEY)
        if row_id is not None:
            self.session.query(self.message_cls).filter(self.message_cls.id == row_id).delete()
            self.session.commit()

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        self._forget(delivery_tag)
        super().basic_ack(delivery_tag, multiple)

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        self._forget(delivery_tag)
        super().basic_reject(delivery_tag, requeue=requeue)

    def _restore(self, message: Any) -> None:
        # A restore re-puts the message as a new row; drop the old invisible one.
        row_id = message.delivery_info.pop(_ROW_KEY, None)
        super()._restore(message)
        if row_id is not None:
            self.session.query(self.message_cls).filter(self.message_cls.id == row_id).delete()
            self.session.commit()


class EmbeddedTransport(sqla.Transport):
    Channel = EmbeddedChannel


def _with_sqlite_pragmas(engine: Any) -> Any:
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")

    return engine


def recover_in_flight(broker_url: str) -> int:
    """Make messages delivered but never acked visible again; return how many.

    Call only when no consumer is running on this broker (embedded start-up).
    """
    engine = create_engine(broker_url.split("+", 1)[1])
    try:
        with engine.begin() as connection:
            if not engine.dialect.has_table(connection, "kombu_message"):
                return 0
            result = connection.execute(
                text("UPDATE kombu_message SET visible = 1 WHERE visible = 0")
            )
            return int(result.rowcount or 0)
    finally:
        engine.dispose()
