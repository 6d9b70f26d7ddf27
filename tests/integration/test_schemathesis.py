"""Schemathesis against the live app (Flask's WSGI, PostgreSQL, RabbitMQ): requests
generated from the OpenAPI document, valid and invalid, for every operation, with an
admin token. Every answer must be no 5xx, a documented status, and match its schema.

Deterministic: Hypothesis is derandomized (the same cases every run, no example
database), the number of cases is bounded, and there is no deadline. The data are
seeded with ids the generator hits (it tries small integers first): a project with
a customer and a rate, a task, time logged on both, a dead letter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schemas.api import IntegrationCreate
from tests.conftest import Org
from tests.events import project, task, timesheet
from tests.integration.sync_harness import KEYED, Sync
from worker.db import ApiToken, DeadLetter, Project, utcnow
from worker.integrations.store import create_integration

# Cases per operation (Hypothesis may need fewer for a small operation); about 60
# operations, each in both modes, make some hundreds of cases in all.
EXAMPLES = 8
AT_LEAST = 400
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
WEBHOOK = "/webhooks/"
ORDER = ["get", "post", "put", "patch", "delete"]
CHECKS = [
    not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@dataclass(frozen=True)
class Seeded:
    """What is in the database before the run: path parameters by name, and the
    webhook token (the integration verifies tokens, which a generated request can
    carry, unlike a signature of its generated body)."""

    schema: BaseSchema
    path_values: dict[str, Any]
    webhook_token: str


@pytest.fixture
def seeded(app: Flask, org: Org, pg_sessions: sessionmaker[Session]) -> Seeded:
    values, webhook_token = _seed(app, org, pg_sessions)
    config = schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"bearerAuth": {"bearer": org.admin_token}}},
            # NUL is refused in every text (422, documented): valid cases go further without.
            "generation": {"deterministic": True, "allow-x00": False},
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    return Seeded(schema, values, webhook_token)


def _seed(app: Flask, org: Org, sessions: sessionmaker[Session]) -> tuple[dict[str, Any], str]:
    """A project with a customer and a rate, a task, time on both, and through the API
    an expense, a quote, a schedule and an invoice; a dead letter. Every table starts
    empty, so each of these has id 1."""
    with sessions.begin() as session:
        created = create_integration(
            session,
            org.id,
            IntegrationCreate(portal_id="portal-1", modules=["timesheets"], verification="token"),
            settings=KEYED,
        )
    sync = Sync(sessions, org.id, created.integration.id)
    assert created.webhook_token is not None
    sync.apply(
        project(rate="60"),
        task("T1", rate="80"),
        timesheet("L1", task_id="T1", minutes=90),
        timesheet("L2", minutes=30),
    )
    client, auth = app.test_client(), org.auth()
    base = f"/api/v1/projects/{sync.row(Project, 'P1').id}"
    made = [
        client.post(
            f"{base}/expenses",
            json={"date": "2026-11-20", "description": "Train", "amount": "42.50"},
            headers=auth,
        ),
        client.post(
            f"{base}/quotes",
            json={"lines": [{"description": "Design", "hours": "2", "rate": "95"}]},
            headers=auth,
        ),
        client.post(
            f"{base}/recurring-invoices",
            json={"name": "Monthly", "frequency": "monthly", "start_date": "2026-11-01"},
            headers=auth,
        ),
        client.post(f"{base}/invoices", json={"scope": {"task_ids": [1]}}, headers=auth),
    ]
    assert [r.status_code for r in made] == [201, 201, 201, 201]
    message = {"event_id": "e-1", "integration_id": sync.integration_id, "event": {}}
    with sessions.begin() as session:
        now = utcnow()
        session.add(
            DeadLetter(
                integration_id=sync.integration_id,
                event_id="e-1",
                module="projects",
                action="created",
                error_class="PermanentError",
                error_message="refused",
                attempts=1,
                first_failure_at=now,
                last_failure_at=now,
                dead_at=now,
                body=json.dumps(message),
                headers={"x-billsync-error-class": "PermanentError"},
            )
        )
        viewer = session.scalars(
            select(ApiToken.id).where(ApiToken.organization_id == org.id, ApiToken.role == "viewer")
        ).one()
    # Any other integer id is 1 too; the viewer's token, so that revoking it is no lock-out.
    return {"integration_id": sync.integration_id, "token_id": viewer}, created.webhook_token


def test_every_answer_is_documented(seeded: Seeded) -> None:
    # schemathesis.pytest.from_fixture reads a pytest internal this pytest no longer has,
    # so the operations are run here, each as Hypothesis tests of its own: valid and
    # invalid requests, and valid ones on the seeded records.
    calls = 0
    failures: list[str] = []
    operations = [result.ok() for result in seeded.schema.get_all_operations()]
    # Reads first and deletes last, so that most operations meet the seeded records.
    operations.sort(key=lambda o: ORDER.index(o.method.lower()))
    for operation in operations:
        names = re.findall(r"\{(\w+)\}", operation.path)
        variants: list[tuple[GenerationMode, dict[str, Any] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if names:
            known = {name: seeded.path_values.get(name, 1) for name in names}
            variants.append((GenerationMode.POSITIVE, known))
        for mode, path_values in variants:
            webhook = path_values is not None and operation.path.startswith(WEBHOOK)
            query = {"token": seeded.webhook_token} if webhook else None

            @given(
                case=operation.as_strategy(
                    generation_mode=mode, path_parameters=path_values, query=query
                )
            )
            @SETTINGS
            def exercise(case: Case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(checks=CHECKS)

            try:
                exercise()
            except Unsatisfiable:
                pass  # nothing to make invalid: no parameter and no body
            except (Exception, FailureGroup) as exc:  # every operation's, not the first only
                where = f" on {path_values}" if path_values else ""
                failures.append(f"{operation.label} ({mode.value}{where}): {exc}")
    assert not failures, "\n\n".join(failures)
    # A run that stopped generating (a setting, an unreadable document) is no pass.
    assert calls >= AT_LEAST, f"only {calls} Schemathesis cases ran"
