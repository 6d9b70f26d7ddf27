"""The OpenAPI document: every route of the app is in it, it is valid OpenAPI 3.1,
and it is served (with a readable page) without a token."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from webhook_gateway.openapi import undocumented_routes

# The status page is HTML for browsers (a cookie session and a form token), not the
# JSON API; static files are Flask's own.
NOT_IN_THE_DOCUMENT = ("static", "status_page.")
_PART = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?\w+>")


def _document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def _paths_of(rule: str) -> list[str]:
    """A rule as the OpenAPI path shapes it stands for (parameters as ``{}``)."""
    choices = [args for converter, args in _PART.findall(rule) if converter == "any"]
    values = [v.strip() for v in choices[0].split(",")] if choices else [""]
    return [
        _PART.sub(lambda m, v=value: v if m.group(1) == "any" else "{}", rule) for value in values
    ]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_in_the_document_with_its_methods(app: Flask, client: FlaskClient) -> None:
    document = _document(client)
    documented = {
        (_shape(path), method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    missing = []
    routes = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith(NOT_IN_THE_DOCUMENT[1]):
            continue
        for path in _paths_of(rule.rule):
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routes += 1
                if (path, method) not in documented:
                    missing.append(f"{method} {path}")
    assert missing == []
    assert undocumented_routes(app) == []
    # Nothing documented that the app does not serve either.
    assert routes == len(documented)


def test_the_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    document = _document(client)
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_api_needs_a_bearer_token_and_the_webhook_its_own_proof(client: FlaskClient) -> None:
    document = _document(client)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (bst_…): viewer or admin.",
    }
    tokens = document["paths"]["/api/v1/tokens"]
    assert tokens["get"]["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(tokens["post"]["responses"])
    webhook = document["paths"]["/webhooks/{integration_id}"]["post"]
    assert webhook["security"] == []
    headers = {p["name"] for p in webhook["parameters"] if p["in"] == "header"}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers
    body = webhook["requestBody"]["content"]["application/json"]["schema"]
    assert any(s.get("type") == "array" for s in body["anyOf"])


def test_errors_and_figures_are_described_as_they_are_answered(client: FlaskClient) -> None:
    document = _document(client)
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorBody"]["properties"]) == {"error", "message", "details"}
    invoice = schemas["InvoiceView"]["properties"]
    assert invoice["total"]["type"] == "string"
    assert invoice["voided_at"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    void = document["paths"]["/api/v1/invoices/{invoice_id}/void"]["post"]["responses"]
    assert void["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


def test_the_document_and_its_page_are_served_without_a_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "/api/v1/projects/{project_id}/invoices" in text
    assert 'href="#schema-InvoiceView"' in text and 'id="schema-InvoiceView"' in text
    # Nothing from elsewhere: the Content-Security-Policy allows this origin only.
    assert "http://" not in text.replace("http://127.0.0.1", "") and "https://" not in text
