"""What the blueprints share, kept in ``app.extensions["billsync"]``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from worker.messaging.publisher import Publisher
from worker.settings import Settings

__all__ = ["Services", "services"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    publisher: Publisher

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session


def services() -> Services:
    found: Services = current_app.extensions["billsync"]
    return found
