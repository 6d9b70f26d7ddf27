"""PortalClient against a mocked transport: paging, retries, token refresh, errors, filters."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from schemas import Module
from worker.portal.auth import AccessToken, StaticToken
from worker.portal.budget import RateBudget
from worker.portal.client import PortalAuthFailed, PortalClient, PortalError, PortalUnavailable
from worker.sync import spec_for

BASE = "https://projects.example.com"
PORTAL = "7001"
PREFIX = f"/api/v3/portal/{PORTAL}"
ACCESS_TOKEN = "1000.secret-access-token.abc123"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """The requests the portal saw and the delays the client slept."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.delays: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


class RenewableToken:
    """An access token that a renewal replaces (as an OAuth refresh would)."""

    def __init__(self, token: str = ACCESS_TOKEN, renewed: str | None = "NEW-TOKEN") -> None:
        self.token = token
        self.renewed = renewed
        self.renewals = 0

    def current(self) -> str:
        return self.token

    def renew(self) -> bool:
        self.renewals += 1
        if self.renewed is None:
            return False
        self.token = self.renewed
        return True


@pytest.fixture
def make_client() -> Iterator[Callable[..., tuple[PortalClient, Recorder]]]:
    clients: list[PortalClient] = []

    def make(
        handler: Handler, token: AccessToken | None = None, **options: Any
    ) -> tuple[PortalClient, Recorder]:
        recorder = Recorder(handler)
        client = PortalClient(
            BASE,
            PORTAL,
            token or StaticToken(ACCESS_TOKEN),
            transport=httpx.MockTransport(recorder),
            sleep=recorder.sleep,
            **options,
        )
        clients.append(client)
        return client, recorder

    yield make
    for client in clients:
        client.close()


def _page(key: str, items: list[dict[str, Any]], has_next: bool) -> httpx.Response:
    return httpx.Response(
        200, json={key: items, "page_info": {"page": 1, "per_page": 2, "has_next_page": has_next}}
    )


def _projects_ok(request: httpx.Request) -> httpx.Response:
    return _page("projects", [{"id": "1"}], has_next=False)


def _v3_error(status: int, title: str, message: str) -> httpx.Response:
    body = {
        "error": {"status_code": str(status), "title": title, "details": [{"message": message}]}
    }
    return httpx.Response(status, json=body)


# -- paging ----------------------------------------------------------------------------


def test_listing_pages_until_has_next_page_is_false(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return _page("projects", [{"id": f"p{page}"}], has_next=page < 3)

    client, recorder = make_client(handler)
    pages = list(client.projects())
    assert pages == [[{"id": "p1"}], [{"id": "p2"}], [{"id": "p3"}]]
    assert [r.url.params["page"] for r in recorder.requests] == ["1", "2", "3"]


def test_every_page_request_carries_per_page(make_client: Any) -> None:
    client, recorder = make_client(_projects_ok, per_page=50)
    list(client.projects())
    assert recorder.requests[0].url.params["per_page"] == "50"


def test_page_info_given_as_a_one_item_array_is_understood(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        info = [{"page": page, "per_page": 1, "has_next_page": page < 2}]
        return httpx.Response(200, json={"users": [{"id": f"u{page}"}], "page_info": info})

    client, _ = make_client(handler)
    assert list(client.users()) == [[{"id": "u1"}], [{"id": "u2"}]]


def test_the_has_more_page_spelling_is_understood(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        info = {"page": page, "has_more_page": "true" if page < 2 else "false"}
        return httpx.Response(200, json={"users": [{"id": f"u{page}"}], "page_info": info})

    client, _ = make_client(handler)
    assert list(client.users()) == [[{"id": "u1"}], [{"id": "u2"}]]


def test_http_204_ends_a_listing_with_no_items(make_client: Any) -> None:
    client, recorder = make_client(lambda request: httpx.Response(204))
    assert list(client.projects()) == []
    assert len(recorder.requests) == 1


def test_a_204_after_a_full_page_ends_the_listing(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "1":
            return _page("projects", [{"id": "p1"}], has_next=True)
        return httpx.Response(204)

    client, _ = make_client(handler)
    assert list(client.projects()) == [[{"id": "p1"}]]


def test_requests_carry_the_zoho_oauthtoken_header_and_portal_prefix(make_client: Any) -> None:
    client, recorder = make_client(_projects_ok)
    list(client.projects())
    request = recorder.requests[0]
    assert request.headers["Authorization"] == f"Zoho-oauthtoken {ACCESS_TOKEN}"
    assert request.url.path == f"{PREFIX}/projects"


# -- retries ---------------------------------------------------------------------------


def test_a_429_is_retried_after_the_retry_after_seconds(make_client: Any) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or _projects_ok(request)

    client, recorder = make_client(handler)
    assert list(client.projects()) == [[{"id": "1"}]]
    assert recorder.delays == [7.0]
    assert len(recorder.requests) == 2


def test_5xx_is_retried_with_growing_capped_backoff_then_portal_unavailable(
    make_client: Any,
) -> None:
    client, recorder = make_client(
        lambda request: httpx.Response(503),
        max_retries=5,
        backoff_seconds=1.0,
        max_backoff_seconds=5.0,
    )
    with pytest.raises(PortalUnavailable, match="503"):
        list(client.projects())
    assert len(recorder.requests) == 6  # the first try and max_retries retries
    assert len(recorder.delays) == 5
    # Jittered into [base * 2**n / 2, base * 2**n], never above the cap.
    for attempt, delay in enumerate(recorder.delays):
        full = 1.0 * 2**attempt
        assert min(full / 2, 5.0) <= delay <= min(full, 5.0)
    assert recorder.delays == sorted(recorder.delays)
    assert recorder.delays[-1] == 5.0  # 2**4 = 16 s halved by jitter is still above the cap


def test_a_5xx_followed_by_success_returns_the_page(make_client: Any) -> None:
    answers = iter([httpx.Response(500), httpx.Response(502)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or _projects_ok(request)

    client, recorder = make_client(handler)
    assert list(client.projects()) == [[{"id": "1"}]]
    assert len(recorder.delays) == 2


def test_retry_after_above_the_cap_is_capped(make_client: Any) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "600"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or _projects_ok(request)

    client, recorder = make_client(handler, max_backoff_seconds=60.0)
    list(client.projects())
    assert recorder.delays == [60.0]


def test_a_connection_error_is_retried(make_client: Any) -> None:
    failures = iter([1])

    def handler(request: httpx.Request) -> httpx.Response:
        if next(failures, None):
            raise httpx.ConnectError("connection refused", request=request)
        return _projects_ok(request)

    client, recorder = make_client(handler)
    assert list(client.projects()) == [[{"id": "1"}]]
    assert len(recorder.delays) == 1
    assert len(recorder.requests) == 2


def test_connection_errors_past_max_retries_raise_portal_unavailable(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, recorder = make_client(handler, max_retries=2)
    with pytest.raises(PortalUnavailable, match="ConnectError"):
        list(client.projects())
    assert len(recorder.delays) == 2


def test_a_400_is_not_retried(make_client: Any) -> None:
    client, recorder = make_client(lambda r: _v3_error(400, "INVALID_INPUT", "bad page"))
    with pytest.raises(PortalError):
        list(client.projects())
    assert len(recorder.requests) == 1
    assert recorder.delays == []


# -- authentication --------------------------------------------------------------------


def _valid_only(token: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == f"Zoho-oauthtoken {token}":
            return _projects_ok(request)
        return _v3_error(401, "INVALID_OAUTHTOKEN", "Invalid OAuth access token")

    return handler


def test_a_401_renews_the_access_token_once_and_retries(make_client: Any) -> None:
    token = RenewableToken()
    client, recorder = make_client(_valid_only("NEW-TOKEN"), token)
    assert list(client.projects()) == [[{"id": "1"}]]
    assert token.renewals == 1
    assert recorder.requests[-1].headers["Authorization"] == "Zoho-oauthtoken NEW-TOKEN"


def test_the_renewed_token_is_kept_for_later_requests(make_client: Any) -> None:
    token = RenewableToken()
    client, _ = make_client(_valid_only("NEW-TOKEN"), token)
    list(client.projects())
    list(client.projects())
    assert token.renewals == 1


def test_a_401_after_renewing_raises_portal_auth_failed(make_client: Any) -> None:
    token = RenewableToken()
    client, recorder = make_client(_valid_only("NEVER-VALID"), token)
    with pytest.raises(PortalAuthFailed):
        list(client.projects())
    assert token.renewals == 1 and len(recorder.requests) == 2


def test_a_401_with_a_token_that_cannot_renew_raises_portal_auth_failed(
    make_client: Any,
) -> None:
    client, recorder = make_client(
        lambda r: _v3_error(401, "INVALID_OAUTHTOKEN", "expired"), RenewableToken(renewed=None)
    )
    with pytest.raises(PortalAuthFailed) as caught:
        list(client.projects())
    assert caught.value.status == 401
    assert len(recorder.requests) == 1


def test_a_403_raises_portal_auth_failed(make_client: Any) -> None:
    client, _ = make_client(lambda r: _v3_error(403, "FORBIDDEN", "no scope"))
    with pytest.raises(PortalAuthFailed):
        list(client.projects())


def test_a_401_with_an_empty_body_raises_portal_auth_failed(make_client: Any) -> None:
    client, _ = make_client(lambda request: httpx.Response(401))
    with pytest.raises(PortalAuthFailed):
        list(client.projects())


# -- errors ----------------------------------------------------------------------------


def test_a_v3_error_body_becomes_portal_error_with_title_and_message(make_client: Any) -> None:
    client, _ = make_client(lambda r: _v3_error(400, "INVALID_INPUT", "per_page is too large"))
    with pytest.raises(PortalError) as caught:
        list(client.projects())
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_INPUT"
    assert "per_page is too large" in str(caught.value)


def test_a_v2_error_body_becomes_portal_error_with_code_and_message(make_client: Any) -> None:
    body = {"error": {"code": 6504, "message": "Given URL is wrong"}}
    client, _ = make_client(lambda r: httpx.Response(400, json=body))
    with pytest.raises(PortalError) as caught:
        list(client.projects())
    assert caught.value.code == "6504"
    assert "Given URL is wrong" in str(caught.value)


def test_a_non_json_error_body_becomes_portal_error_with_the_status(make_client: Any) -> None:
    client, _ = make_client(lambda r: httpx.Response(400, text="<html>Bad Request</html>"))
    with pytest.raises(PortalError) as caught:
        list(client.projects())
    assert caught.value.code == "400"


# -- credentials stay out of text ------------------------------------------------------


def _messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "handler",
    [
        lambda r: _v3_error(401, "INVALID_OAUTHTOKEN", "expired"),
        lambda r: _v3_error(400, "INVALID_INPUT", "bad"),
        lambda r: httpx.Response(503),
    ],
    ids=["401", "400", "503"],
)
def test_the_access_token_never_appears_in_exceptions_or_logs(
    make_client: Any, caplog: pytest.LogCaptureFixture, handler: Handler
) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = make_client(handler, max_retries=2)
    with pytest.raises((PortalError, PortalUnavailable)) as caught:
        list(client.projects())
    assert ACCESS_TOKEN not in str(caught.value)
    assert ACCESS_TOKEN not in repr(caught.value)
    assert ACCESS_TOKEN not in _messages(caplog)


def test_the_access_token_never_appears_in_logs_of_a_connection_error(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers}", request=request)

    caplog.set_level(logging.DEBUG)
    client, _ = make_client(handler, max_retries=1)
    with pytest.raises(PortalUnavailable) as caught:
        list(client.projects())
    assert ACCESS_TOKEN not in str(caught.value)
    assert ACCESS_TOKEN not in _messages(caplog)


# -- single records --------------------------------------------------------------------


def test_exists_is_false_on_404(make_client: Any) -> None:
    client, recorder = make_client(lambda r: _v3_error(404, "NOT_FOUND", "no such task"))
    assert client.exists(("tasks",), "55", project_id="9") is False
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9/tasks/55"


def test_exists_is_true_on_200(make_client: Any) -> None:
    client, recorder = make_client(lambda r: httpx.Response(200, json={"projects": [{"id": "9"}]}))
    assert client.exists(("projects",), "9") is True
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9"


@pytest.mark.parametrize("log_type", ["task", "issue", "general"])
def test_exists_reads_one_log_at_logs_with_its_type(make_client: Any, log_type: str) -> None:
    client, recorder = make_client(lambda r: httpx.Response(200, json={"time_logs": []}))
    client.log_exists("9", "77", log_type)
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9/logs/77"
    assert recorder.requests[0].url.params["type"] == log_type


def test_exists_reads_an_issue_at_the_issues_path(make_client: Any) -> None:
    client, recorder = make_client(lambda r: httpx.Response(200, json={"issues": []}))
    client.exists(("issues", "bugs"), "77", project_id="9")
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9/issues/77"


def test_exists_raises_other_errors(make_client: Any) -> None:
    client, _ = make_client(lambda r: _v3_error(400, "INVALID_INPUT", "bad id"))
    with pytest.raises(PortalError):
        client.exists(("projects",), "9")


def test_exists_is_false_on_a_404_with_an_empty_body(make_client: Any) -> None:
    client, _ = make_client(lambda request: httpx.Response(404))
    assert client.exists(("projects",), "9") is False


# -- filters ---------------------------------------------------------------------------


def test_projects_as_a_bare_array_page_until_a_short_page(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return httpx.Response(200, json=[{"id": f"p{page}a"}, {"id": f"p{page}b"}][: 3 - page])

    client, recorder = make_client(handler, per_page=2)
    assert [[p["id"] for p in page] for page in client.projects()] == [["p1a", "p1b"], ["p2a"]]
    assert len(recorder.requests) == 2


def test_a_full_bare_array_page_asks_for_the_next_one(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        full = request.url.params["page"] == "1"
        return httpx.Response(200, json=[{"id": "a"}, {"id": "b"}] if full else [])

    client, recorder = make_client(handler, per_page=2)
    assert list(client.projects()) == [[{"id": "a"}, {"id": "b"}]]
    assert [r.url.params["page"] for r in recorder.requests] == ["1", "2"]


def test_projects_send_no_changed_since_parameters(make_client: Any) -> None:
    client, recorder = make_client(_projects_ok)
    list(client.projects())
    assert set(recorder.requests[0].url.params) == {"page", "per_page"}


def test_project_clients_lists_the_clients_of_the_project(make_client: Any) -> None:
    clients = [{"id": "c1", "name": "Acme"}, {"id": "c2", "name": "Other"}]
    client, recorder = make_client(lambda r: httpx.Response(200, json={"clients": clients}))
    assert client.project_clients("9") == clients
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9/clients"


def test_project_clients_fall_back_to_the_v2_path_once(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v3/"):
            return _v3_error(400, "URL_RULE_NOT_CONFIGURED", "Given URL is wrong")
        return httpx.Response(200, json={"clients": [{"id": 42, "name": "Acme"}]})

    client, recorder = make_client(handler)
    assert client.project_clients("9") == [{"id": 42, "name": "Acme"}]
    assert client.project_clients("10") == [{"id": 42, "name": "Acme"}]
    assert [r.url.path for r in recorder.requests] == [
        f"{PREFIX}/projects/9/clients",
        f"/restapi/portal/{PORTAL}/projects/9/clients",
        f"/restapi/portal/{PORTAL}/projects/10/clients",
    ]


def test_project_clients_is_empty_on_204(make_client: Any) -> None:
    client, _ = make_client(lambda r: httpx.Response(204))
    assert client.project_clients("9") == []


@pytest.mark.parametrize(
    ("module", "path"),
    [
        ("milestones", "milestones"),
        ("tasklists", "tasklists"),
        ("tasks", "tasks"),
        ("bugs", "issues"),
    ],
)
def test_children_are_read_whole_at_their_v3_path(make_client: Any, module: str, path: str) -> None:
    client, recorder = make_client(lambda r: _page(path, [{"id": "1"}], has_next=False))
    assert list(client.children(spec_for(Module(module)).paths, "9")) == [[{"id": "1"}]]
    assert recorder.requests[0].url.path == f"{PREFIX}/projects/9/{path}"
    assert set(recorder.requests[0].url.params) == {"page", "per_page"}


def test_issues_fall_back_to_bugs_where_the_portal_has_no_issues_path(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/issues"):
            return _v3_error(400, "URL_RULE_NOT_CONFIGURED", "Given URL is wrong")
        return _page("bugs", [{"id": "b1"}], has_next=False)

    client, recorder = make_client(handler)
    assert list(client.children(("issues", "bugs"), "9")) == [[{"id": "b1"}]]
    assert list(client.children(("issues", "bugs"), "10")) == [[{"id": "b1"}]]
    assert [r.url.path.rsplit("/", 1)[1] for r in recorder.requests] == ["issues", "bugs", "bugs"]


def test_a_deleted_project_is_not_mistaken_for_an_unknown_path(make_client: Any) -> None:
    client, recorder = make_client(lambda r: _v3_error(404, "RESOURCE_NOT_FOUND", "no project"))
    with pytest.raises(PortalError) as caught:
        list(client.children(("issues", "bugs"), "9"))
    assert caught.value.status == 404 and len(recorder.requests) == 1


# -- the request budget ----------------------------------------------------------------


def test_every_request_takes_a_token_from_the_budget(make_client: Any) -> None:
    now = [0.0]
    slept: list[float] = []
    budget = RateBudget(2, 120, clock=lambda: now[0], sleep=slept.append)
    client, recorder = make_client(_projects_ok, budget=budget)

    for _ in range(3):
        list(client.projects())

    # Two calls fit the bucket; the third waits one refill interval (60 s).
    assert len(recorder.requests) == 3 and slept == [60.0]
    assert budget.throttled is True


# -- time logs -------------------------------------------------------------------------


def _timelogs(groups: list[dict[str, Any]]) -> Handler:
    """Task logs in ``groups``; no logs of the other types (204, as the portal answers)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.url.params["module"])["type"] != "task":
            return httpx.Response(204)
        return httpx.Response(
            200, json={"time_logs": groups, "page_info": {"has_next_page": False}}
        )

    return handler


def test_timelogs_are_read_once_per_log_type_in_a_custom_date_window(make_client: Any) -> None:
    client, recorder = make_client(_timelogs([]))
    list(client.timelogs("9", date(2026, 6, 1), date(2026, 11, 30), by_modified_time=False))
    assert [json.loads(r.url.params["module"]) for r in recorder.requests] == [
        {"type": "task"},
        {"type": "issue"},
        {"type": "general"},
    ]
    for request in recorder.requests:
        assert request.url.path == f"{PREFIX}/projects/9/timelogs"
        assert request.url.params["view_type"] == "customdate"
        assert request.url.params["start_date"] == "2026-06-01"
        assert request.url.params["end_date"] == "2026-11-30"


def test_timelogs_by_log_date_sends_no_fetch_by_modified_time(make_client: Any) -> None:
    client, recorder = make_client(_timelogs([]))
    list(client.timelogs("9", date(2026, 6, 1), date(2026, 11, 30), by_modified_time=False))
    assert "fetch_by_modified_time" not in recorder.requests[0].url.params


def test_timelogs_by_modified_time_sends_fetch_by_modified_time(make_client: Any) -> None:
    client, recorder = make_client(_timelogs([]))
    list(client.timelogs("9", date(2026, 6, 1), date(2026, 11, 30), by_modified_time=True))
    assert recorder.requests[0].url.params["fetch_by_modified_time"] == "true"


def test_a_log_without_module_detail_gets_the_type_it_was_listed_under(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        kind = json.loads(request.url.params["module"])["type"]
        groups = [{"date": "2026-11-20", "log_details": [{"id": kind}]}]
        return httpx.Response(200, json={"time_logs": groups})

    client, _ = make_client(handler)
    pages = list(client.timelogs("9", date(2026, 11, 1), date(2026, 11, 30), by_modified_time=True))
    assert [(p[0]["id"], p[0]["module_detail"]["type"]) for p in pages] == [
        ("task", "task"),
        ("issue", "issue"),
        ("general", "general"),
    ]


def test_timelogs_flattens_date_groups_giving_each_log_its_date(make_client: Any) -> None:
    groups = [
        {"date": "2026-11-20", "log_details": [{"id": "a"}, {"id": "b"}]},
        {"date": "2026-11-21", "log_details": [{"id": "c"}]},
    ]
    client, _ = make_client(_timelogs(groups))
    pages = list(client.timelogs("9", date(2026, 11, 1), date(2026, 11, 30), by_modified_time=True))
    task = {"type": "task"}
    assert pages == [
        [
            {"id": "a", "date": "2026-11-20", "module_detail": task},
            {"id": "b", "date": "2026-11-20", "module_detail": task},
            {"id": "c", "date": "2026-11-21", "module_detail": task},
        ]
    ]


def test_a_log_keeps_its_own_date_over_its_group_date(make_client: Any) -> None:
    groups = [{"date": "2026-11-20", "log_details": [{"id": "a", "date": "2026-11-19"}]}]
    client, _ = make_client(_timelogs(groups))
    [page] = client.timelogs("9", date(2026, 11, 1), date(2026, 11, 30), by_modified_time=True)
    assert page[0]["date"] == "2026-11-19"


@pytest.mark.parametrize("spelling", ["", "_"])
def test_timelogs_flattens_the_v2_group_spellings(make_client: Any, spelling: str) -> None:
    groups = [
        {
            "date": "11-20-2026",
            f"task{spelling}logs": [{"id": "t"}],
            f"bug{spelling}logs": [{"id": "b"}],
            f"general{spelling}logs": [{"id": "g"}],
        }
    ]
    client, _ = make_client(_timelogs(groups))
    [page] = client.timelogs("9", date(2026, 11, 1), date(2026, 11, 30), by_modified_time=False)
    assert [(log["id"], log["date"], log["module_detail"]["type"]) for log in page] == [
        ("t", "11-20-2026", "task"),
        ("b", "11-20-2026", "issue"),
        ("g", "11-20-2026", "general"),
    ]


def test_timelogs_pages_through_the_window(make_client: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.url.params["module"])["type"] != "task":
            return httpx.Response(204)
        page = int(request.url.params["page"])
        body = {
            "time_logs": [{"date": "2026-11-20", "log_details": [{"id": f"l{page}"}]}],
            "page_info": {"has_next_page": page < 2},
        }
        return httpx.Response(200, content=json.dumps(body))

    client, _ = make_client(handler)
    pages = list(client.timelogs("9", date(2026, 11, 1), date(2026, 11, 30), by_modified_time=True))
    assert [[log["id"] for log in page] for page in pages] == [["l1"], ["l2"]]
