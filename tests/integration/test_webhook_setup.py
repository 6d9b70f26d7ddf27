"""Zoho webhook setup end to end: the API, the CLI, and a filled template through the gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from schemas.api import WebhookSetup, WebhookTemplate
from tests.conftest import Connected, Org, make_org
from tests.support import BrokerProbe, wait_until
from tests.webhook_templates import fill
from webhook_gateway import create_app
from worker.messaging.publisher import Publisher
from worker.settings import Settings

pytestmark = pytest.mark.integration

# Fields a record lacks: Zoho's picker sends them empty, and billsync takes them as absent.
UNUSED = ("data.bug_id", "data.milestone_id", "data.tasklist_id")


@pytest.fixture
def zoho(client: FlaskClient, org: Org) -> tuple[str, str]:
    """A token-mode integration with time logs: the id and the token shown once."""
    response = client.post(
        "/api/v1/integrations",
        json={"portal_id": "zoho-portal", "modules": ["timesheets"], "verification": "token"},
        headers=org.auth(),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["id"], body["webhook_token"]


def get_setup(client: FlaskClient, org: Org, integration_id: str) -> WebhookSetup:
    response = client.get(
        f"/api/v1/integrations/{integration_id}/webhook-setup", headers=org.auth("viewer")
    )
    assert response.status_code == 200, response.get_json()
    return WebhookSetup.model_validate(response.get_json())


def template(setup: WebhookSetup, module: str, action: str) -> WebhookTemplate:
    chosen = next(m for m in setup.modules if m.module == module)
    return next(t for t in chosen.templates if t.action == action)


def post_as_zoho(client: FlaskClient, setup: WebhookSetup, token: str, event: Any) -> Any:
    """POST to the module's URL with the custom parameter appended as Zoho's Preview URL shows."""
    url = setup.modules[0].url.removeprefix("http://localhost")
    return client.post(url, query_string={"token": token}, json=event)


# -- the API ---------------------------------------------------------------------------


def test_a_viewer_reads_the_setup_of_every_module(
    client: FlaskClient, org: Org, zoho: tuple[str, str]
) -> None:
    setup = get_setup(client, org, zoho[0])

    assert len(setup.modules) == 7
    assert setup.verification == "token"


def test_without_a_public_url_the_urls_use_the_requests_host(
    client: FlaskClient, org: Org, zoho: tuple[str, str]
) -> None:
    setup = get_setup(client, org, zoho[0])

    assert {m.url for m in setup.modules} == {f"http://localhost/webhooks/{zoho[0]}"}
    assert {m.custom_parameters["token"] for m in setup.modules} == {"<your webhook token>"}


def test_the_public_url_setting_is_the_base_of_the_urls(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    org: Org,
    zoho: tuple[str, str],
) -> None:
    public = settings.model_copy(update={"public_url": "https://billsync.example.com/"})
    client = create_app(public, publisher=publisher, sessions=pg_sessions).test_client()

    setup = get_setup(client, org, zoho[0])

    assert setup.modules[0].url == f"https://billsync.example.com/webhooks/{zoho[0]}"


def test_the_webhook_token_is_never_shown_again(
    client: FlaskClient, org: Org, zoho: tuple[str, str]
) -> None:
    response = client.get(f"/api/v1/integrations/{zoho[0]}/webhook-setup", headers=org.auth())

    assert zoho[1] not in response.get_data(as_text=True)


def test_a_signature_mode_integration_carries_the_warning(
    client: FlaskClient, org: Org, integration: Connected
) -> None:
    setup = get_setup(client, org, integration.id)

    assert setup.warning is not None and "cannot sign" in setup.warning


def test_another_organizations_integration_is_404(
    client: FlaskClient, pg_sessions: sessionmaker[Session], zoho: tuple[str, str]
) -> None:
    other = make_org(pg_sessions, "Other")

    response = client.get(f"/api/v1/integrations/{zoho[0]}/webhook-setup", headers=other.auth())

    assert response.status_code == 404


def test_without_a_token_the_setup_is_401(client: FlaskClient, zoho: tuple[str, str]) -> None:
    assert client.get(f"/api/v1/integrations/{zoho[0]}/webhook-setup").status_code == 401


# -- a filled template through the gateway --------------------------------------------------


@pytest.mark.parametrize(
    "module", ["projects", "milestones", "tasklists", "tasks", "bugs", "users", "timesheets"]
)
@pytest.mark.parametrize("action", ["created", "updated", "deleted"])
def test_a_filled_template_posted_with_the_token_parameter_is_accepted(
    client: FlaskClient,
    org: Org,
    zoho: tuple[str, str],
    broker: BrokerProbe,
    module: str,
    action: str,
) -> None:
    setup = get_setup(client, org, zoho[0])

    response = post_as_zoho(client, setup, zoho[1], fill(template(setup, module, action)))

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "queued"


def test_filled_templates_are_applied_like_any_webhook(
    client: FlaskClient,
    org: Org,
    zoho: tuple[str, str],
    broker: BrokerProbe,
    worker: None,
) -> None:
    setup = get_setup(client, org, zoho[0])
    project, task, log = (
        fill(template(setup, name, "created"), empty=UNUSED)
        for name in ("projects", "tasks", "timesheets")
    )

    for event in (project, task, log):
        assert post_as_zoho(client, setup, zoho[1], event).status_code == 202

    timesheets = wait_until(lambda: _items(client, org, "/api/v1/timesheets"))
    assert [t["source_id"] for t in timesheets] == [log["data"]["id"]]
    assert [p["source_id"] for p in _items(client, org, "/api/v1/projects")] == [
        project["data"]["id"]
    ]
    assert [t["source_id"] for t in _items(client, org, "/api/v1/tasks")] == [task["data"]["id"]]


def _items(client: FlaskClient, org: Org, path: str) -> list[dict[str, Any]]:
    response = client.get(path, headers=org.auth("viewer"))
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


# -- the CLI ---------------------------------------------------------------------------------


def run_cli(args: list[str], database_url: str, broker_url: str, tmp_path: Path) -> Any:
    """``billsync`` in its own process, as an operator runs it."""
    env = {
        "PATH": "/usr/bin:/bin",
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_prints_the_url_and_exits_0(
    zoho: tuple[str, str], database_url: str, broker_url: str, tmp_path: Path
) -> None:
    args = ["integration", "webhook-setup", zoho[0], "--public-url", "https://b.example.com"]

    done = run_cli(args, database_url, broker_url, tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"https://b.example.com/webhooks/{zoho[0]}" in done.stdout
    assert "token = <your webhook token>" in done.stdout


def test_the_cli_prints_the_apis_json_with_json(
    zoho: tuple[str, str], database_url: str, broker_url: str, tmp_path: Path
) -> None:
    args = ["integration", "webhook-setup", zoho[0], "--public-url", "https://b.example.com"]

    done = run_cli([*args, "--json"], database_url, broker_url, tmp_path)

    assert done.returncode == 0, done.stderr
    assert WebhookSetup.model_validate_json(done.stdout).integration_id == zoho[0]


def test_the_cli_refuses_an_unknown_integration_with_a_message(
    pg_sessions: sessionmaker[Session], database_url: str, broker_url: str, tmp_path: Path
) -> None:
    args = ["integration", "webhook-setup", "no-such-id", "--public-url", "https://b.example.com"]

    done = run_cli(args, database_url, broker_url, tmp_path)

    assert done.returncode != 0
    assert "no integration no-such-id" in done.stderr
