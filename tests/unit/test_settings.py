"""Settings refuse what cannot work and point out BILLSYNC_* variables they ignore."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import Settings, unknown_variables


def test_the_log_level_is_accepted_in_any_case() -> None:
    assert Settings(log_level="warning").log_level == "WARNING"


def test_an_unknown_log_level_is_refused_naming_the_levels() -> None:
    with pytest.raises(ValidationError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        Settings(log_level="verbose")


def test_a_misspelled_variable_is_named_with_the_setting_it_is_closest_to() -> None:
    assert unknown_variables({"BILLSYNC_DATABSE_URL": "postgresql://db/billsync"}) == [
        "BILLSYNC_DATABSE_URL is not a billsync setting and is ignored; "
        "did you mean BILLSYNC_DATABASE_URL?"
    ]


def test_an_unknown_variable_like_no_setting_is_named_without_a_guess() -> None:
    assert unknown_variables({"BILLSYNC_FOO": "1"}) == [
        "BILLSYNC_FOO is not a billsync setting and is ignored"
    ]


def test_settings_in_any_case_other_programs_variables_and_the_tests_are_not_warned_about() -> None:
    environ = {
        "BILLSYNC_PORT": "8080",
        "billsync_log_level": "info",
        "BILLSYNC_TEST_DATABASE_URL": "postgresql://127.0.0.1/postgres",
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == []
