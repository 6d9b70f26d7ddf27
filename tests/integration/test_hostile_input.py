"""Hostile input is answered 4xx, never 500.

First the rules one by one (the findings they came from), then a fuzz pass: every
route of the app (``app.url_map.iter_rules()``) is called with a table of hostile
values in its path parameters, its query string and its JSON body, with an admin
token (webhooks correctly signed), and every 5xx is collected and reported at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.routing import Rule

from tests import events
from tests.conftest import CREDENTIAL_KEY, Connected, Org
from tests.support import BrokerProbe, dumps, signed_headers, wait_until
from tests.unit.test_field_bounds import NUL_PATHS, TEXT_BOUNDS, event

pytestmark = pytest.mark.integration

HUGE = "99999999999999999999"


def _post_signed(client: FlaskClient, integration: Connected, body: bytes) -> Any:
    return client.post(integration.url, data=body, headers=signed_headers(integration.secret, body))


def _assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.get_json()
    assert {"error", "message", "details"} <= set(body)
    return body


@pytest.fixture
def project(client: FlaskClient, org: Org) -> int:
    customer = client.post(
        "/api/v1/customers",
        json={"name": "Initech", "currency_code": "USD", "email": "ap@initech.example"},
        headers=org.auth(),
    )
    assert customer.status_code == 201, customer.get_json()
    created = client.post(
        "/api/v1/projects",
        json={"name": "Internal", "customer_id": customer.get_json()["id"]},
        headers=org.auth(),
    )
    assert created.status_code == 201, created.get_json()
    project_id: int = created.get_json()["id"]
    return project_id


# -- the webhook contract: each bound is a 422 at the gateway ------------------------------


@pytest.mark.parametrize(("module", "path", "limit"), TEXT_BOUNDS)
def test_a_webhook_field_longer_than_its_column_is_422_at_the_gateway(
    client: FlaskClient,
    integration: Connected,
    broker: BrokerProbe,
    module: str,
    path: str,
    limit: int,
) -> None:
    response = _post_signed(
        client, integration, events.webhook_body(event(module, path, "x" * (limit + 1)))
    )
    assert [d["path"] for d in _assert_error(response, 422)["details"]] == [path]
    assert broker.depth() == 0


@pytest.mark.parametrize(("module", "path"), NUL_PATHS)
def test_a_nul_character_in_a_webhook_field_is_422_at_the_gateway(
    client: FlaskClient, integration: Connected, broker: BrokerProbe, module: str, path: str
) -> None:
    response = _post_signed(client, integration, events.webhook_body(event(module, path, "U\x00D")))
    assert path in [d["path"] for d in _assert_error(response, 422)["details"]]
    assert broker.depth() == 0


@pytest.mark.parametrize(
    ("module", "path", "value", "refused"),
    [
        ("timesheets", "data.minutes", 2**63, "data.minutes"),
        ("timesheets", "data.minutes", 1441, "data.minutes"),
        ("projects", "data.rate", 1e30, "data.rate"),
        ("projects", "data.budget_value", "1000000000000", "data.budget_value"),
        ("timesheets", "data.log_date", "10000-01-01", "data.log_date"),
        ("projects", "modified_at", "0001-01-01T00:00:00+14:00", "modified_at"),
        ("projects", "data.custom_fields", {"Phase": ["ok", "\x00"]}, "data.custom_fields.Phase"),
    ],
)
def test_a_webhook_value_the_database_cannot_store_is_422_at_the_gateway(
    client: FlaskClient,
    integration: Connected,
    broker: BrokerProbe,
    module: str,
    path: str,
    value: Any,
    refused: str,
) -> None:
    response = _post_signed(client, integration, events.webhook_body(event(module, path, value)))
    assert [d["path"] for d in _assert_error(response, 422)["details"]] == [refused]
    assert broker.depth() == 0


def signed_bytes(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers over raw bytes (the library signs text only)."""
    msg_id, timestamp = "msg_bytes", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def test_a_correctly_signed_body_that_is_not_utf8_is_400(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = '{"module": "projects", "name": "Café"}'.encode("latin-1")
    headers = {"Content-Type": "application/json", **signed_bytes(integration.secret, body)}
    response = client.post(integration.url, data=body, headers=headers)
    assert _assert_error(response, 400)["error"] == "malformed_json"
    assert broker.depth() == 0


def test_a_nul_in_an_unauthenticated_webhook_path_is_404(client: FlaskClient) -> None:
    response = client.post("/webhooks/abc%00def", json=events.project())
    _assert_error(response, 404)


def test_a_webhook_id_header_that_cannot_be_an_event_id_is_422(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = dumps(events.project())
    headers = signed_headers(integration.secret, body, msg_id="m" * 201)
    response = client.post(integration.url, data=body, headers=headers)
    assert _assert_error(response, 422)["details"][0]["path"] == "webhook-id"
    assert broker.depth() == 0


# -- the API: ids, nulls, unicode digits, NUL, huge amounts ---------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/projects/{HUGE}",
        f"/api/v1/projects/{2**63}",
        "/api/v1/projects/%C2%B2",  # "²"
        f"/api/v1/invoices/{HUGE}",
        f"/api/v1/dead-letters/{HUGE}",
        f"/api/v1/projects/{HUGE}/unbilled",
        "/api/v1/projects/1%00",
    ],
)
def test_an_id_the_database_cannot_hold_in_a_path_is_404(
    client: FlaskClient, org: Org, path: str
) -> None:
    _assert_error(client.get(path, headers=org.auth()), 404)


@pytest.mark.parametrize(
    "query",
    [
        f"customer_id={HUGE}",
        "customer_id=%C2%B2",
        f"cursor={base64.urlsafe_b64encode(f'id:{HUGE}'.encode()).decode()}",
        "limit=%C2%B2",
        "limit=%D9%A1%D9%A2",  # Arabic-Indic "12"
        "limit=1%00",
        "billing_status=%00",
    ],
)
def test_a_bad_query_value_is_422(client: FlaskClient, org: Org, query: str) -> None:
    resource = "timesheets" if query.startswith("billing") else "projects"
    _assert_error(client.get(f"/api/v1/{resource}?{query}", headers=org.auth()), 422)


@pytest.mark.parametrize("query", [f"project_id={HUGE}", "project_id=%C2%B2", "project_id=-1"])
def test_a_bad_invoice_filter_is_422(client: FlaskClient, org: Org, query: str) -> None:
    _assert_error(client.get(f"/api/v1/invoices?{query}", headers=org.auth()), 422)


@pytest.mark.parametrize("query", [f"cursor={HUGE}", "limit=%C2%B2", "ids=%00"])
def test_a_bad_dead_letter_query_is_422(client: FlaskClient, org: Org, query: str) -> None:
    _assert_error(client.get(f"/api/v1/dead-letters?{query}", headers=org.auth()), 422)


def test_an_explicit_null_in_an_integration_patch_is_422_naming_the_field(
    client: FlaskClient, org: Org, integration: Connected
) -> None:
    response = client.patch(
        f"/api/v1/integrations/{integration.id}",
        json={"customer_duplication": None},
        headers=org.auth(),
    )
    assert _assert_error(response, 422)["details"][0]["path"] == "customer_duplication"


def test_explicit_nulls_in_quote_and_expense_patches_are_422_naming_the_field(
    client: FlaskClient, org: Org, project: int
) -> None:
    quote = client.post(
        f"/api/v1/projects/{project}/quotes",
        json={"lines": [{"description": "Design", "hours": "2", "rate": "100"}]},
        headers=org.auth(),
    )
    expense = client.post(
        f"/api/v1/projects/{project}/expenses",
        json={"date": "2026-11-01", "description": "Taxi", "amount": "12.50"},
        headers=org.auth(),
    )
    assert quote.status_code == expense.status_code == 201
    for url, name in (
        (f"/api/v1/quotes/{quote.get_json()['id']}", "lines"),
        (f"/api/v1/expenses/{expense.get_json()['id']}", "date"),
    ):
        response = client.patch(url, json={name: None}, headers=org.auth())
        assert _assert_error(response, 422)["details"][0]["path"] == name


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("invoices", {"amount": 1e30}),
        ("recurring-invoices", {"name": "M", "frequency": "monthly",
                                "start_date": "2026-12-01", "amount": "1e30"}),
        ("expenses", {"date": "2026-11-01", "description": "Taxi", "amount": 1e30}),
        ("quotes", {"lines": [{"description": "D", "hours": "1", "rate": 1e30}]}),
    ],
)  # fmt: skip
def test_a_1e30_amount_is_422(
    client: FlaskClient, org: Org, project: int, suffix: str, body: dict[str, Any]
) -> None:
    response = client.post(f"/api/v1/projects/{project}/{suffix}", json=body, headers=org.auth())
    _assert_error(response, 422)


def test_a_nul_in_an_api_body_is_422_naming_the_field(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/customers",
        json={"name": "Ini\x00tech", "currency_code": "USD"},
        headers=org.auth(),
    )
    assert _assert_error(response, 422)["details"][0]["path"] == "name"


def test_a_row_id_beyond_bigint_in_a_body_is_422(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/projects", json={"name": "P", "customer_id": 2**63}, headers=org.auth()
    )
    assert _assert_error(response, 422)["details"][0]["path"] == "customer_id"


# -- gunicorn's own answers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_port(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, broker_url: str, pg_engine: Engine
) -> Iterator[int]:
    """``billsync gateway`` (gunicorn) on a free port, on the suite's servers."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    env = {
        **os.environ,
        "BILLSYNC_DATA_DIR": str(tmp_path),
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_CREDENTIAL_KEY": CREDENTIAL_KEY,
    }
    command = [sys.executable, "-m", "worker.cli", "gateway", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "1", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        healthz = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        wait_until(lambda: _answers(port, healthz), 30)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int, request: bytes) -> bytes:
    """What the server answers to raw ``request`` bytes (empty if it is not up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request)
            chunks = []
            while chunk := connection.recv(65536):  # every answer here closes the connection
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return b""


def _status_and_json(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head, answer[:300]
    return int(head.split(b" ")[1]), json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
            + b"\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"BAD\x00 / HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ],
)
def test_what_gunicorn_refuses_itself_is_answered_with_the_json_error_body(
    gunicorn_port: int, request_bytes: bytes, status: int, error: str
) -> None:
    answered, body = _status_and_json(_answers(gunicorn_port, request_bytes))
    assert (answered, body["error"]) == (status, error)
    assert body["message"]


# -- the fuzz pass ---------------------------------------------------------------------------

PATH_VALUES: dict[str, str] = {
    "huge int": HUGE,
    "bigint max": str(2**63 - 1),
    "bigint max + 1": str(2**63),
    "negative": "-1",
    "zero": "0",
    "unicode digit": "²",
    "arabic digits": "١٢",
    "NUL": "1\x00",
    "long": "9" * 5000,
    "text": "abc",
    "exponent": "1e30",
    "space": " 1",
}

QUERY_KEYS = [
    "limit",
    "cursor",
    "project_id",
    "task_id",
    "bug_id",
    "staff_id",
    "customer_id",
    "billing_status",
    "kind",
    "status",
    "module",
    "reason",
    "since",
    "until",
    "ids",
    "integration_id",
    "event_id",
    "error_class",
    "action",
    "token",
]
QUERY_VALUES: dict[str, str] = {
    "huge int": HUGE,
    "bigint max + 1": str(2**63),
    "negative": "-1",
    "unicode digit": "²",
    "NUL": "a\x00b",
    "long": "x" * 5000,
    "empty": "",
    "null": "null",
    "date overflow": "0001-01-01T00:00:00+14:00",
    "json": '{"a": [1]}',
}

JSON_VALUES: dict[str, Any] = {
    "huge int": 10**20,
    "bigint max + 1": 2**63,
    "negative": -1,
    "zero": 0,
    "exponent": 1e30,
    "tiny": 1e-30,
    "unicode digit": "²",
    "NUL": "a\x00b",
    "long": "x" * 10_000,
    "null": None,
    "bool": True,
    "list": [1, "a", None],
    "nested junk": {"a": {"b": [None, "\x00", {"c": 10**30}]}},
    "empty": "",
    "date overflow": "0001-01-01T00:00:00+14:00",
    "year 99999": "99999-12-31",
    "NaN": "NaN",
}

RAW_BODIES: dict[str, tuple[bytes, str]] = {
    "invalid JSON": (b'{"a": ', "application/json"),
    "not UTF-8": (b'{"a": "\xff\xfe"}', "application/json"),
    "NUL byte": (b'{"a": "\x00"}', "application/json"),
    "JSON null": (b"null", "application/json"),
    "JSON array": (b"[1, 2]", "application/json"),
    "JSON string": (b'"x"', "application/json"),
    "JSON number": (b"1e999", "application/json"),
    "deep nesting": (b"[" * 5000 + b"]" * 5000, "application/json"),
    "wrong content type": (b'{"a": 1}', "text/plain"),
    "form with NUL": (b"token=a%00b&module=%00", "application/x-www-form-urlencoded"),
    "empty": (b"", "application/json"),
}

_PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


@dataclass(frozen=True)
class Fixture:
    """Ids of real records, so a route gets past 'not found' to read its input."""

    integration: Connected
    project: int
    customer: int
    expense: int
    quote: int
    recurring: int

    def path_defaults(self) -> dict[str, str]:
        return {
            "integration_id": self.integration.id,
            "project_id": str(self.project),
            "record_id": str(self.project),
            "name": "projects",
            "expense_id": str(self.expense),
            "quote_id": str(self.quote),
            "recurring_id": str(self.recurring),
            "invoice_id": "1",
            "task_id": "1",
            "staff_id": "1",
            "dead_letter_id": "1",
            "token_id": "00000000-0000-0000-0000-000000000000",
            "filename": "x.css",
        }

    def bodies(self) -> dict[tuple[str, str], Any]:
        """A valid body per route that takes one: the fuzz changes one leaf at a time."""
        line = {"description": "Design", "hours": "2", "rate": "100"}
        filt = {"module": "projects", "ids": [1], "since": "2026-01-01T00:00:00Z"}
        return {
            ("POST", "/webhooks/<integration_id>"): event("timesheets"),
            ("POST", "/api/v1/integrations"): {
                "portal_id": "portal-2",
                "modules": ["timesheets"],
                "invoiced_before": "2026-11-01",
                "customer_duplication": "clone",
                "field_map": {
                    "projects": [
                        {"source": "a", "source_type": "text", "target": "b", "target_type": "text"}
                    ]
                },
                "verification": "signature",
                "source": {"base_url": "http://127.0.0.1:9", "credentials": {"access_token": "t"}},
            },
            ("PATCH", "/api/v1/integrations/<integration_id>"): {
                "customer_duplication": "clone",
                "restrict_project_creation": False,
                "modules": ["timesheets"],
                "field_map": {},
            },
            ("POST", "/api/v1/integrations/<integration_id>/enable"): {"portal_id": "portal-1"},
            ("POST", "/api/v1/dead-letters/replay"): {"filter": filt, "dry_run": True, "limit": 5},
            ("POST", "/api/v1/dead-letters/delete"): {"filter": filt, "dry_run": True},
            ("POST", "/api/v1/dead-letters/<int:dead_letter_id>/replay"): {
                "event": events.project()
            },
            ("POST", "/api/v1/projects/<int:project_id>/invoices"): {
                "scope": {"task_ids": [1], "from": "2026-01-01", "to": "2026-12-31"},
                "group_by": "task",
                "issue_date": "2026-11-30",
                "amount": "10",
            },
            ("PATCH", "/api/v1/projects/<int:project_id>"): {
                "rate": "120.00",
                "billing_type": "based_on_project_hours",
            },
            ("PATCH", "/api/v1/tasks/<int:task_id>"): {"rate": "50"},
            ("PATCH", "/api/v1/staff/<int:staff_id>"): {"rate": "50"},
            ("POST", "/api/v1/projects/<int:project_id>/expenses"): {
                "date": "2026-11-01",
                "description": "Taxi",
                "amount": "12.50",
                "billable": True,
            },
            ("PATCH", "/api/v1/expenses/<int:expense_id>"): {
                "date": "2026-11-02",
                "description": "Train",
                "amount": "13.50",
                "billable": False,
            },
            ("POST", "/api/v1/projects/<int:project_id>/quotes"): {
                "lines": [line],
                "issue_date": "2026-11-01",
                "expiry_date": "2026-12-01",
            },
            ("PATCH", "/api/v1/quotes/<int:quote_id>"): {
                "lines": [line],
                "status": "sent",
                "expiry_date": "2026-12-01",
            },
            ("POST", "/api/v1/projects/<int:project_id>/recurring-invoices"): {
                "name": "Monthly",
                "frequency": "monthly",
                "start_date": "2026-12-01",
                "end_date": "2027-12-01",
                "group_by": "single",
                "amount": "100",
            },
            ("PATCH", "/api/v1/recurring-invoices/<int:recurring_id>"): {
                "name": "Monthly 2",
                "end_date": "2027-06-01",
                "group_by": "task",
                "amount": "50",
                "active": True,
            },
            ("POST", "/api/v1/customers"): {
                "name": "Umbrella",
                "email": "ap@umbrella.example",
                "currency_code": "EUR",
                "crm_id": "crm-1",
            },
            ("POST", "/api/v1/projects"): {
                "name": "Internal 2",
                "customer_id": self.customer,
                "billing_type": "based_on_task_hours",
            },
            ("POST", "/api/v1/users"): {"name": "Bob", "email": "bob@example.com"},
            ("POST", "/api/v1/tokens"): {"role": "viewer", "name": "ci"},
        }


def _is_error_body(response: Any) -> bool:
    body = response.get_json(silent=True)
    return isinstance(body, dict) and "error" in body


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON body a value can be swapped: each key and each list item,
    containers included (so a whole object can turn into junk too)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(body))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


def _url(rule: Rule, values: dict[str, str], query: str = "") -> str:
    path = _PARAMETER.sub(lambda m: quote(values[m.group(1)], safe=""), rule.rule)
    return f"{path}?{query}" if query else path


@dataclass
class Fuzz:
    """Calls one route with hostile input, as an admin (webhooks signed), and collects
    every answer the rules forbid, so one run reports them all."""

    client: FlaskClient
    org: Org
    integration: Connected
    failures: list[str] = field(default_factory=list)
    calls: int = 0

    def call(
        self,
        method: str,
        rule: Rule,
        url: str,
        case: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        headers = self.org.auth()
        if body is not None:
            headers["Content-Type"] = content_type
            if rule.endpoint == "webhooks.receive":
                headers.update(signed_bytes(self.integration.secret, body))
        response = self.client.open(url, method=method, data=body, headers=headers)
        self.calls += 1
        self._check(f"{method} {rule.rule} [{case}]", rule, response)

    def _check(self, where: str, rule: Rule, response: Any) -> None:
        status = response.status_code
        if status >= 500:
            self.failures.append(f"{where} -> {status} {response.get_data(as_text=True)[:200]}")
        elif status >= 400 and _answers_json(rule) and not _is_error_body(response):
            self.failures.append(f"{where} -> {status} without a JSON error body")


def _answers_json(rule: Rule) -> bool:
    """Everything but the status page (HTML for people) and static files."""
    return not (rule.endpoint or "").startswith(("status_page.", "static"))


def _routes(app: Flask) -> list[tuple[str, Rule]]:
    """Every (method, rule) of the app; deletes last, so the fuzz never removes what
    the other routes need (it sends them hostile ids only anyway)."""
    pairs = [
        (method, rule)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]
    return sorted(pairs, key=lambda pair: (pair[0] == "DELETE", pair[1].rule, pair[0]))


@pytest.fixture
def fixture(client: FlaskClient, org: Org, integration: Connected, project: int) -> Fixture:
    def created(url: str, body: dict[str, Any]) -> int:
        response = client.post(url, json=body, headers=org.auth())
        assert response.status_code == 201, response.get_json()
        record_id: int = response.get_json()["id"]
        return record_id

    base = f"/api/v1/projects/{project}"
    customer = client.get(base, headers=org.auth()).get_json()["customer_id"]
    return Fixture(
        integration=integration,
        project=project,
        customer=customer,
        expense=created(
            f"{base}/expenses", {"date": "2026-11-01", "description": "Taxi", "amount": "9"}
        ),
        quote=created(
            f"{base}/quotes", {"lines": [{"description": "D", "hours": "1", "rate": "1"}]}
        ),
        recurring=created(
            f"{base}/recurring-invoices",
            {"name": "M", "frequency": "monthly", "start_date": "2026-12-01"},
        ),
    )


def fuzz_path(fuzz: Fuzz, method: str, rule: Rule, defaults: dict[str, str], body: Any) -> None:
    for argument in sorted(rule.arguments):
        for label, value in PATH_VALUES.items():
            url = _url(rule, {**defaults, argument: value})
            fuzz.call(method, rule, url, f"path {argument}={label}", body)


def fuzz_query(fuzz: Fuzz, method: str, rule: Rule, defaults: dict[str, str]) -> None:
    for key in QUERY_KEYS:
        for label, value in QUERY_VALUES.items():
            url = _url(rule, defaults, urlencode({key: value}))
            fuzz.call(method, rule, url, f"query {key}={label}")


def fuzz_body(fuzz: Fuzz, method: str, rule: Rule, url: str, sample: Any) -> None:
    """Whole bodies that are junk, then (given a valid sample) one junk leaf at a time."""
    for label, (raw, content_type) in RAW_BODIES.items():
        fuzz.call(method, rule, url, f"body {label}", raw, content_type)
    for label, value in JSON_VALUES.items():
        fuzz.call(method, rule, url, f"body = {label}", dumps(value))
    if sample is None:
        return
    for where in _leaves(sample):
        at = ".".join(map(str, where))
        for label, value in JSON_VALUES.items():
            body = dumps(_replaced(sample, where, value))
            fuzz.call(method, rule, url, f"body {at}={label}", body)


def test_no_route_answers_500_to_hostile_input(
    app: Flask, client: FlaskClient, org: Org, fixture: Fixture, broker: BrokerProbe
) -> None:
    fuzz = Fuzz(client, org, fixture.integration)
    defaults, bodies, routes = fixture.path_defaults(), fixture.bodies(), _routes(app)
    unknown = {a for _, rule in routes for a in rule.arguments} - set(defaults)
    assert not unknown, f"give the fuzz a valid value for path parameter(s) {unknown}"

    for method, rule in routes:
        takes_body = method in ("POST", "PATCH", "PUT")
        sample = bodies.get((method, rule.rule))
        valid_body = dumps(sample) if sample is not None else (b"{}" if takes_body else None)
        fuzz_path(fuzz, method, rule, defaults, valid_body)
        if method == "GET":
            fuzz_query(fuzz, method, rule, defaults)
        if takes_body:
            fuzz_body(fuzz, method, rule, _url(rule, defaults), sample)

    print(f"fuzz: {len(routes)} routes, {fuzz.calls} calls")
    assert not fuzz.failures, (
        f"{len(fuzz.failures)} of {fuzz.calls} hostile calls were answered wrongly:\n"
        + "\n".join(fuzz.failures)
    )
