"""The one Settings object: built once at start by the CLI and passed everywhere.

Nothing reads the environment at import time. Every field is a ``BILLSYNC_*``
variable (``BILLSYNC_DATABASE_URL`` and so on). The defaults are the embedded
mode: a SQLite database and kombu's SQLAlchemy/SQLite transport under
``BILLSYNC_DATA_DIR``, so ``billsync run`` needs no servers.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOG_LEVELS", "Settings", "unknown_variables"]

ENV_PREFIX = "BILLSYNC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# BILLSYNC_* variables that are not settings: the test suite's server URLs.
_NOT_SETTINGS = ("BILLSYNC_TEST_",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(
        default=Path(".billsync"),
        description="Where the embedded database and broker files live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/billsync.sqlite.",
    )
    broker_url: str = Field(
        default="",
        description="kombu URL (amqp://…); empty means SQLite transport at DATA_DIR/broker.sqlite.",
    )
    credential_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Fernet key that encrypts portal credentials at rest (`billsync zoho key` makes "
            "one; comma-separate several to rotate, the first encrypts). Empty: embedded mode "
            "keeps one in DATA_DIR/credential.key; with PostgreSQL, required."
        ),
    )

    portal_allowed_hosts: str = Field(
        default="",
        description=(
            "Comma-separated host[:port] patterns (127.0.0.1:8090, *.example.com) a pull "
            "source's base_url or accounts_url may name besides Zoho's own https hosts "
            "(http allowed): a test or fake portal. Empty: Zoho's hosts only."
        ),
    )
    status_session_hours: float = Field(
        default=8.0, gt=0, description="How long a status-page login lasts."
    )
    queue_depths_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a gateway process reuses the queue depths it last read from "
        "the broker for status answers (0: read them for every answer).",
    )

    # Webhook ingress (README: the webhook contract).
    webhook_max_bytes: int = Field(default=256 * 1024, gt=0)
    secret_rotation_overlap_hours: int = Field(default=24, ge=0)
    credentials_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long the gateway caches webhook credentials."
    )
    credentials_cache_max_entries: int = Field(
        default=10_000,
        gt=0,
        description="At most this many integration ids (known or not) in that cache, "
        "per gateway process; the least recently used go first.",
    )

    # Publishing: bounded so a request never hangs on a dead broker.
    publish_confirm_timeout_seconds: float = Field(default=5.0, gt=0)
    publish_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    publish_max_retries: int = Field(default=2, ge=0)
    publish_pool_size: int = Field(default=16, gt=0)
    retry_after_seconds: int = Field(default=5, gt=0)

    # Topology and consumption.
    delivery_limit: int = Field(default=20, gt=0, description="Quorum-queue x-delivery-limit.")
    # Two batches' worth: the next batch arrives while one is applied (at one batch, the
    # broker sends more only once a batch is acked, and the worker waits for it).
    prefetch: int = Field(default=400, gt=0)
    batch_size: int = Field(default=200, gt=0)
    batch_max_wait_ms: int = Field(default=50, ge=0)
    apply_max_attempts: int = Field(default=5, gt=0)
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_max_seconds: float = Field(default=60.0, ge=0)
    embedded_polling_interval_seconds: float = Field(default=0.05, gt=0)

    # PostgreSQL connections: bounded so a vanished path or a stuck peer never blocks
    # a worker for long (worker/db/session.py).
    db_connect_timeout_seconds: int = Field(
        default=10, ge=2, description="libpq connect_timeout: longest wait for a connection."
    )
    db_keepalives_idle_seconds: int = Field(
        default=30, gt=0, description="TCP keepalive: idle seconds before the first probe."
    )
    db_keepalives_interval_seconds: int = Field(
        default=10, gt=0, description="TCP keepalive: seconds between unanswered probes."
    )
    db_keepalives_count: int = Field(
        default=3, gt=0, description="TCP keepalive: unanswered probes before the link is dead."
    )
    db_lock_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="A statement waiting this long for a lock fails and its batch is retried "
        "(0: wait for ever).",
    )
    db_statement_timeout_seconds: float = Field(
        default=300.0, ge=0, description="Longest statement (0: no limit)."
    )
    db_idle_in_transaction_seconds: float = Field(
        default=60.0,
        ge=0,
        description="The server ends a session idle this long inside a transaction (a client "
        "that vanished mid-batch), releasing its locks (0: never).",
    )
    db_outage_probe_max_seconds: float = Field(
        default=5.0,
        gt=0,
        description="While the database is unavailable the worker holds its batch and probes "
        "it, backing off from RETRY_BASE_SECONDS up to this (or RETRY_MAX_SECONDS if lower).",
    )

    # Pull sync.
    pull_overlap_seconds: int = Field(
        default=300, ge=0, description="A pull re-reads from each watermark minus this."
    )
    pull_per_page: int = Field(default=200, gt=0, le=200)
    pull_history_days: int = Field(
        default=730, gt=0, description="How far back a first pull reads time logs."
    )
    pull_detect_deletes: bool = Field(
        default=True, description="Compare portal listings with local records to find deletes."
    )
    pull_commit_timeout_seconds: float = Field(
        default=120.0, gt=0, description="A pull fails when its events stop being applied."
    )
    portal_rate_calls: int = Field(
        default=100,
        gt=0,
        description="Zoho's request budget per credential: this many calls per window…",
    )
    portal_rate_window_seconds: float = Field(
        default=120.0, gt=0, description="…in this many seconds (Zoho: about 100 per 2 minutes)."
    )
    portal_max_retries: int = Field(default=6, ge=0)
    portal_backoff_seconds: float = Field(default=1.0, ge=0)
    portal_timeout_seconds: float = Field(default=30.0, gt=0)
    sync_poll_seconds: float = Field(default=1.0, gt=0)
    sync_stale_seconds: float = Field(
        default=120.0, gt=0, description="A running pull silent this long is taken as dead."
    )
    reconcile_interval_seconds: float = Field(
        default=0, ge=0, description="Periodic reconciliation pull; 0 turns it off."
    )

    # Retention: what `billsync db prune` removes (README: Retention and pruning).
    retain_processed_events_days: int = Field(
        default=35,
        ge=1,
        description="Days an event id stays in the processed-event ledger after it was "
        "claimed, so that a copy arriving meanwhile is a duplicate (a no-op). Copies kept as "
        "dead letters or parked events hold their id for as long as they wait (every prune "
        "renews it), so only copies kept nowhere need this window: a portal retrying a "
        "webhook, a message waiting in the queue through a worker outage, a replayed dead "
        "letter or a republished parked event on its way. It may not be shorter than "
        "REDELIVERY_WINDOW_DAYS. A copy later than this is no longer a duplicate; the "
        "newest-version-wins upsert still makes it `stale`. PostgreSQL drops whole weeks: "
        "ids stay up to 7 days longer.",
    )
    redelivery_window_days: int = Field(
        default=14,
        ge=1,
        description="The longest a copy of an applied event may still arrive after it was "
        "applied, when no dead letter or parked event holds it: the portal's webhook retries "
        "(Zoho documents none; Standard Webhooks senders retry for up to a few days), the "
        "apply queue's backlog through a worker outage, a replay's copies on their way. "
        "RETAIN_PROCESSED_EVENTS_DAYS must cover it.",
    )
    retain_resolved_errors_days: int = Field(
        default=90,
        ge=1,
        description="Days a resolved error-summary row is kept after it was last seen "
        "(open errors are never pruned).",
    )
    retain_dead_letter_audit_days: int = Field(
        default=365,
        ge=1,
        description="Days the audit of a dead-letter edit (the body before and after) is kept "
        "once its dead letter was replayed or deleted (the audit of a waiting one is kept).",
    )
    retain_sync_runs_days: int = Field(
        default=90,
        ge=1,
        description="Days a finished sync run stays in the history (open runs, and the newest "
        "finished run of each integration, are kept).",
    )

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = Field(
        default="",
        description="The URL the portal reaches the gateway at (webhook setup); "
        "empty: the host of the request that asks.",
    )
    log_level: str = Field(default="INFO", description=f"One of {', '.join(LOG_LEVELS)}.")
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="`billsync worker` serves /metrics here; 0: off."
    )

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case)")
        return level

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'billsync.sqlite').resolve()}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"
        if self.database_url.startswith(("postgres://", "postgresql://")):
            # psycopg 3 is the driver we ship; accept the plain scheme people paste.
            self.database_url = "postgresql+psycopg://" + self.database_url.split("://", 1)[1]
        return self

    @model_validator(mode="after")
    def _ledger_covers_redelivery(self) -> Settings:
        # An id pruned while a copy of its event can still arrive would be applied twice.
        if self.retain_processed_events_days < self.redelivery_window_days:
            raise ValueError(
                f"{ENV_PREFIX}RETAIN_PROCESSED_EVENTS_DAYS ({self.retain_processed_events_days}) "
                f"is shorter than {ENV_PREFIX}REDELIVERY_WINDOW_DAYS "
                f"({self.redelivery_window_days}): an event id would leave the processed-event "
                "ledger while a redelivered or replayed copy of its event can still arrive, and "
                "that copy would be applied again. Keep the ledger at least as long as the window."
            )
        return self

    @property
    def is_embedded_broker(self) -> bool:
        """True for kombu's virtual transports, which lack DLX and delivery limits."""
        return not self.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))

    @property
    def uses_data_dir(self) -> bool:
        """True when the database or the broker lives in files under DATA_DIR."""
        return self.database_url.startswith("sqlite") or self.is_embedded_broker

    def ensure_data_dir(self) -> None:
        if self.uses_data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning per ``BILLSYNC_*`` variable that is no setting (a misspelling would
    otherwise be ignored in silence), naming the closest setting when one is close."""
    known = [name.upper() for name in Settings.model_fields]
    warnings = []
    for variable in sorted(environ):
        name = variable.upper()  # pydantic-settings reads names in any case
        if not name.startswith(ENV_PREFIX) or name.startswith(_NOT_SETTINGS):
            continue
        setting = name.removeprefix(ENV_PREFIX)
        if setting in known:
            continue
        # Compared without the prefix, which every name shares and would make all close.
        close = difflib.get_close_matches(setting, known, n=1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{variable} is not a billsync setting and is ignored{hint}")
    return warnings
