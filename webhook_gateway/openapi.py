"""The API described as OpenAPI 3.1: ``GET /api/v1/openapi.json`` and a page, ``/api/v1/docs``.

Built here from what the routes already use, rather than by a library:

- flask-openapi3 and APIFlask replace the Flask app and blueprint classes, pass
  validated parameters into the views and answer invalid input in their own error
  shape; the routes here parse bodies themselves (``parse_body``: 400 for broken
  JSON, 422 with field paths, NUL characters refused) and every error is
  ``{"error", "message", "details"}``, which the document must describe as it is.
- spectree validates on its own too (its 422 bodies are pydantic's error list),
  serves its UI from a CDN this gateway's pages cannot load (offline deployments,
  and the Content-Security-Policy allows this origin only), and documents one
  operation per view: the read API is one view for eight collections
  (``/<any(projects, …):name>``), each answered as a model of its own.

What the document needs is already typed: request bodies are ``schemas.api``
models, answers ``schemas.responses`` models, errors ``ErrorBody``. A route says
which with :func:`documented` (or :func:`documented_each` for an ``any(…)`` rule);
the builder walks ``app.url_map`` so that a route cannot exist undescribed without
the coverage test noticing, and takes every JSON schema from pydantic in one pass
(shared definitions become ``components/schemas``). What every route shares is
added here rather than repeated: bearer authentication and its 401/403 (from
``require``), the 422 of the NUL guard and the 503 of a database outage, and
400/413/422 wherever a JSON body is read.

The status page (``/``, its forms and its stylesheet) is HTML for browsers behind a
cookie session and a form token, not part of the JSON API: it is left out.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template
from markupsafe import Markup, escape
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from schemas.payloads import BIGINT_MAX
from schemas.responses import ErrorBody
from webhook_gateway.auth import ROLE_ATTRIBUTE

__all__ = [
    "ContractSchema",
    "Media",
    "Operation",
    "Param",
    "blueprint",
    "documented",
    "documented_each",
    "openapi_document",
    "query_params",
    "undocumented_routes",
]

F = TypeVar("F", bound=Callable[..., Any])

OPERATION_ATTRIBUTE = "billsync_operation"
_DOCUMENT = "billsync.openapi"
# Left out of the document (see the module's docstring); everything else is in it.
_NOT_API = ("static", "status_page.")
# Ids of integrations and tokens are UUIDs (String(36) columns).
ID_PATTERN = "^[0-9A-Za-z-]{1,36}$"
_RULE_PART = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Param:
    """A query parameter or header; ``schema`` is its JSON schema."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False
    where: Literal["query", "header"] = "query"


@dataclass(frozen=True)
class Media:
    """An answer that is not JSON."""

    content_type: str
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """What a route takes and answers. ``answers`` maps a status to the type of its
    JSON body (a model, or any type pydantic can describe), a :class:`Media`, or None
    for no body. ``errors`` are the statuses the route itself answers with an
    ``ErrorBody``; the shared ones are added by the builder."""

    answers: Mapping[int, Any]
    body: Any = None
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    summary: str = ""
    description: str = ""
    authenticated: bool = True  # False: no bearer token (webhooks carry their own proof)
    database: bool = True  # False: answers without the database (so never its 503)


def documented(
    answers: Mapping[int, Any],
    *,
    body: Any = None,
    query: Iterable[Param] = (),
    headers: Iterable[Param] = (),
    errors: Iterable[int] = (),
    authenticated: bool = True,
    database: bool = True,
) -> Callable[[F], F]:
    """Describe the route below for the OpenAPI document; its docstring gives the
    summary (first paragraph) and description. Put it directly above the function."""

    def decorator(view: F) -> F:
        # reStructuredText's ``code`` is Markdown's `code` in the document.
        text = inspect.cleandoc(view.__doc__ or "").replace("``", "`")
        summary, _, description = text.partition("\n\n")
        operation = Operation(
            answers=answers,
            body=body,
            query=tuple(query),
            headers=tuple(headers),
            errors=tuple(errors),
            summary=" ".join(summary.split()) or view.__name__.replace("_", " "),
            description=" ".join(description.split()),
            authenticated=authenticated,
            database=database,
        )
        vars(view)[OPERATION_ATTRIBUTE] = lambda _value: operation
        return view

    return decorator


def documented_each(describe: Callable[[str], Operation]) -> Callable[[F], F]:
    """Describe a route whose rule has an ``any(…)`` part: one operation per value."""

    def decorator(view: F) -> F:
        vars(view)[OPERATION_ATTRIBUTE] = describe
        return view

    return decorator


def query_params(model: type[BaseModel], **descriptions: str) -> tuple[Param, ...]:
    """The fields of a model read from the query string, as query parameters."""
    schema = model.model_json_schema(mode="validation", schema_generator=ContractSchema)
    required = set(schema.get("required", ()))
    return tuple(
        Param(
            name,
            _inline(field_schema),
            descriptions.get(name, field_schema.get("description", "")),
            name in required,
        )
        for name, field_schema in schema["properties"].items()
    )


def _inline(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A field's schema without pydantic's title (a parameter has its name)."""
    return {k: v for k, v in schema.items() if k != "title"}


class ContractSchema(GenerateJsonSchema):
    """Pydantic's JSON schema, with a request's decimals as the text the API reads
    exactly: as many digits as the column holds, no sign where it must be positive.
    (A JSON number is taken too, but a binary float seldom keeps those digits, and
    JSON Schema cannot bound digits of a number.)

    A PATCH field that may be left out but not be null has no default: pydantic
    writes its ``None`` default as ``null``, which the schema refuses."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        found = super().default_schema(schema)
        if found.get("default", ...) is None and not _takes_null(found):
            del found["default"]
        return found

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        digits, places = schema.get("max_digits"), schema.get("decimal_places")
        if self.mode == "serialization" or digits is None or places is None:
            return super().decimal_schema(schema)
        whole = digits - places
        fraction = f"(?:\\.[0-9]{{1,{places}}})?"
        if schema.get("gt") == 0:
            pattern = (
                f"^(?:[1-9][0-9]{{0,{whole - 1}}}{fraction}|0\\.[0-9]{{0,{places - 1}}}[1-9])$"
            )
        elif schema.get("ge") == 0:
            pattern = f"^[0-9]{{1,{whole}}}{fraction}$"
        else:
            pattern = f"^-?[0-9]{{1,{whole}}}{fraction}$"
        return {
            "type": "string",
            "pattern": pattern,
            "description": "A decimal number, as text (a JSON number is taken too).",
        }


def _takes_null(schema: JsonSchemaValue) -> bool:
    """Whether an inline schema accepts null (a reference may: assume it does)."""
    if "$ref" in schema or ("type" not in schema and "anyOf" not in schema):
        return True
    return schema.get("type") == "null" or any(_takes_null(s) for s in schema.get("anyOf", ()))


# -- the document -------------------------------------------------------------------------


def undocumented_routes(app: Flask) -> list[str]:
    """The API routes no :func:`documented` describes (the coverage test wants none)."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if _in_api(rule.endpoint)
        and OPERATION_ATTRIBUTE not in vars(app.view_functions[rule.endpoint])
    )


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes (built once per app)."""
    cached: dict[str, Any] | None = app.extensions.get(_DOCUMENT)
    if cached is None:
        cached = _Builder(app).document()
        app.extensions[_DOCUMENT] = cached
    return cached


def _in_api(endpoint: str) -> bool:
    return not any(endpoint == part or endpoint.startswith(part) for part in _NOT_API)


@dataclass
class _Entry:
    path: str
    method: str
    operation: Operation
    path_params: list[dict[str, Any]]
    operation_id: str
    tag: str
    role: str | None


@dataclass
class _Builder:
    app: Flask
    entries: list[_Entry] = field(default_factory=list)
    # Every type a schema is needed for, by (type, mode): one pass of pydantic for all.
    types: dict[tuple[Any, JsonSchemaMode], TypeAdapter[Any]] = field(default_factory=dict)
    schemas: dict[tuple[Any, JsonSchemaMode], JsonSchemaValue] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        # Rules with an any(…) part last: a path they share with another rule keeps the
        # other's parameter names (``/projects/{project_id}``, not ``{record_id}``).
        rules = sorted(
            self.app.url_map.iter_rules(), key=lambda r: ("<any(" in r.rule, r.rule, r.endpoint)
        )
        for rule in rules:
            if not _in_api(rule.endpoint):
                continue
            view = self.app.view_functions[rule.endpoint]
            describe = vars(view).get(OPERATION_ATTRIBUTE)
            if describe is None:
                continue  # the coverage test names it
            role = vars(view).get(ROLE_ATTRIBUTE)
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            for value, path, params in _expand(rule.rule):
                operation: Operation = describe(value)
                for method in methods:
                    suffix = f"_{value}" if value else ""
                    self.entries.append(
                        _Entry(
                            path,
                            method.lower(),
                            operation,
                            params,
                            f"{rule.endpoint.replace('.', '_')}{suffix}_{method.lower()}",
                            rule.endpoint.partition(".")[0],
                            role if operation.authenticated else None,
                        )
                    )
        for entry in self.entries:
            self._collect(entry.operation)
        self.schemas, definitions = TypeAdapter.json_schemas(
            [(kind, mode, adapter) for (kind, mode), adapter in self.types.items()],
            ref_template="#/components/schemas/{model}",
            schema_generator=ContractSchema,
        )
        paths: dict[str, dict[str, Any]] = {}
        shapes: dict[str, str] = {}  # /a/{}/b -> the first path written for that shape
        for entry in self.entries:
            path, params = _same_names(entry, shapes)
            paths.setdefault(path, {})[entry.method] = self._operation(entry, params)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "billsync",
                "version": "1",
                "description": (
                    "Keeps an invoicing organization in step with a project-management "
                    "portal. The management and read API is under /api/v1 with an API "
                    "token (viewer tokens read, admin tokens also write); portals send "
                    "webhooks to /webhooks/{integration_id}, signed with Standard "
                    "Webhooks headers."
                ),
            },
            "paths": paths,
            "components": {
                "schemas": definitions.get("$defs", {}),
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API token (bst_…): viewer or admin.",
                    }
                },
            },
        }

    def _collect(self, operation: Operation) -> None:
        if operation.body is not None:
            self._need(operation.body, "validation")
        for answer in operation.answers.values():
            if answer is not None and not isinstance(answer, Media):
                self._need(answer, "serialization")
        self._need(ErrorBody, "serialization")

    def _need(self, kind: Any, mode: JsonSchemaMode) -> None:
        if (kind, mode) not in self.types:
            self.types[(kind, mode)] = TypeAdapter(kind)

    def _schema(self, kind: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self.schemas[(kind, mode)])

    def _operation(self, entry: _Entry, path_params: list[dict[str, Any]]) -> dict[str, Any]:
        operation = entry.operation
        parameters = [
            *path_params,
            *(_parameter(p) for p in (*operation.query, *operation.headers)),
        ]
        # Every route: the NUL guard's 422; and a database outage's 503 where it is used.
        errors = set(operation.errors) | {422}
        if operation.database:
            errors.add(503)
        if path_params:
            errors.add(404)
        if operation.body is not None:
            errors |= {400, 413}
        if entry.role is not None:
            errors.add(401)
            if entry.role == "admin":
                errors.add(403)
        responses: dict[str, Any] = {}
        for status, answer in sorted(operation.answers.items()):
            responses[str(status)] = self._response(status, answer)
        for status in sorted(errors - set(operation.answers)):
            responses[str(status)] = self._response(status, ErrorBody)
        document: dict[str, Any] = {
            "operationId": entry.operation_id,
            "tags": [entry.tag],
            "summary": operation.summary,
        }
        description = operation.description
        if entry.role == "admin":
            description = " ".join(filter(None, ["Needs an admin token.", description]))
        if description:
            document["description"] = description
        if parameters:
            document["parameters"] = parameters
        if operation.body is not None:
            document["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": self._schema(operation.body, "validation")}
                },
            }
        document["responses"] = responses
        document["security"] = [{"bearerAuth": []}] if entry.role is not None else []
        return document

    def _response(self, status: int, answer: Any) -> dict[str, Any]:
        description = _REASONS.get(status, "Answer")
        if answer is None:
            return {"description": description}
        if isinstance(answer, Media):
            return {
                "description": answer.description or description,
                "content": {answer.content_type: {"schema": {"type": "string"}}},
            }
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": self._schema(answer, "serialization")}},
        }
        if status == 503:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "string"},
                }
            }
        return response


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Malformed JSON (or a body that is not UTF-8)",
    401: "No token, or an unknown or revoked one (webhooks: a bad signature or token)",
    403: "The token's role may not do this",
    404: "No such record for this organization",
    409: "Contradicts the current state",
    410: "The integration was deleted",
    413: "The body is over the size limit",
    415: "Not application/json",
    422: "The request does not match the contract (`details` names the fields)",
    500: "The server's configuration is unusable",
    503: "A dependency (database, broker) did not answer: retry after Retry-After",
}


def _parameter(param: Param) -> dict[str, Any]:
    found: dict[str, Any] = {"name": param.name, "in": param.where, "schema": dict(param.schema)}
    if param.description:
        found["description"] = param.description
    if param.required:
        found["required"] = True
    return found


def _expand(rule: str) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """A werkzeug rule as OpenAPI paths: one per value of an ``any(…)`` part (with
    that value), else one (with ``""``); and the path parameters of each."""
    parts = list(_RULE_PART.finditer(rule))
    choices = [p for p in parts if p["converter"] == "any"]
    values = [v.strip() for v in choices[0]["args"].split(",")] if choices else [""]
    params = [_path_param(p["name"], p["converter"]) for p in parts if p["converter"] != "any"]
    for value in values:

        def written(part: re.Match[str], value: str = value) -> str:
            return value if part["converter"] == "any" else "{" + part["name"] + "}"

        yield value, _RULE_PART.sub(written, rule), params


def _path_param(name: str, converter: str | None) -> dict[str, Any]:
    schema: dict[str, Any]
    if converter == "int":
        schema = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
    else:
        schema = {"type": "string", "pattern": ID_PATTERN}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _same_names(entry: _Entry, shapes: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAPI takes ``/projects/{record_id}`` and ``/projects/{project_id}`` for one
    path: the operations of a path shape all use the names it was first written with."""
    shape = re.sub(r"\{[^}]+\}", "{}", entry.path)
    first = shapes.setdefault(shape, entry.path)
    names = re.findall(r"\{([^}]+)\}", first)
    params = [{**p, "name": n} for p, n in zip(entry.path_params, names, strict=True)]
    return first, params


# -- serving it ---------------------------------------------------------------------------

blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1", template_folder="templates")


@blueprint.get("/openapi.json")
@documented({200: Media("application/json", "This document")}, authenticated=False, database=False)
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(openapi_document(current_app))


@blueprint.get("/docs")
@documented(
    {200: Media("text/html", "The operations, readable")}, authenticated=False, database=False
)
def docs() -> str:
    """This API's operations and schemas as a page (from the OpenAPI document)."""
    document = openapi_document(current_app)
    return render_template("api_docs.html", document=document, operations=_operations(document))


_METHOD_ORDER = ("get", "post", "put", "patch", "delete")
_CODE_SPAN = re.compile(r"`([^`]+)`")


@blueprint.app_template_filter("code_spans")
def code_spans(text: str) -> Markup:
    """Markdown's `code` spans of a description as <code>, the rest escaped."""
    return Markup(_CODE_SPAN.sub(lambda m: f"<code>{m[1]}</code>", str(escape(text))))


def _operations(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The operations by tag, then path and method, each with what the page shows."""
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            found.append(
                {
                    "tag": operation["tags"][0],
                    "method": method,
                    "path": path,
                    "operation": operation,
                    "anchor": operation["operationId"],
                    "body": _ref_name(
                        operation.get("requestBody", {})
                        .get("content", {})
                        .get("application/json", {})
                        .get("schema")
                    ),
                    "answers": [
                        (status, answer["description"], _answer_name(answer))
                        for status, answer in operation["responses"].items()
                    ],
                }
            )
    return sorted(
        found, key=lambda o: (o["tag"], o["path"], _METHOD_ORDER.index(o["method"].lower()))
    )


def _answer_name(answer: Mapping[str, Any]) -> str:
    for content_type, media in answer.get("content", {}).items():
        if content_type != "application/json":
            return str(content_type)
        return _ref_name(media.get("schema")) or "JSON"
    return ""


def _ref_name(schema: Mapping[str, Any] | None) -> str:
    """The schema's name where it is a reference (else a short description)."""
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_ref_name(s) or s.get("type", "") for s in schema[key])
    return str(schema.get("type", "JSON"))
