"""The event-id ledger may not be pruned sooner than a copy of an event can come back."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from worker.cli import cli
from worker.settings import Settings


def test_a_ledger_kept_shorter_than_the_redelivery_window_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(retain_processed_events_days=7, redelivery_window_days=14)
    message = str(refused.value)
    assert "BILLSYNC_RETAIN_PROCESSED_EVENTS_DAYS (7)" in message
    assert "BILLSYNC_REDELIVERY_WINDOW_DAYS (14)" in message


def test_a_ledger_kept_exactly_as_long_as_the_redelivery_window_is_accepted() -> None:
    settings = Settings(retain_processed_events_days=14, redelivery_window_days=14)
    assert settings.retain_processed_events_days == 14


def test_the_default_ledger_retention_covers_the_default_window() -> None:
    settings = Settings()
    assert settings.retain_processed_events_days >= settings.redelivery_window_days


def test_the_cli_refuses_a_ledger_shorter_than_the_window_as_invalid_configuration() -> None:
    result = CliRunner().invoke(
        cli, ["db", "prune", "--dry-run"], env={"BILLSYNC_RETAIN_PROCESSED_EVENTS_DAYS": "3"}
    )
    assert result.exit_code == 2
    assert "invalid configuration:\n  BILLSYNC_RETAIN_PROCESSED_EVENTS_DAYS (3) is shorter" in (
        result.output
    )
