"""The portal side of the pull path: a client of Zoho Projects' V3 REST API.

billsync speaks to Zoho as public clients of the live V3 API observe it answering.
Each shape below names its source; where sources disagree, both spellings are
accepted (``worker.portal.converters``), and a record that fits none is counted as
``invalid`` with the fields it lacked, in the run's history. The answers are
recorded, one per endpoint, in ``tests/fixtures/zoho/`` and checked by the
contract tests.

Sources (public repositories, read for facts only):
  [GK] gk-wino/zoho-projects-mcp: ``data/projects.json`` (a live project export),
       ``scripts/list-projects.ts``, ``src/handlers/{Project,Task,Issue,TimeLog,User}Handler.ts``,
       ``src/schemas/timelog.schemas.ts``.
  [PA] Panoptic-IT-Solutions/zoho-projects-client: ``src/client.ts``,
       ``src/types/{projects,tasks,timelogs,phases,issues,users}.ts``,
       ``src/utils/rate-limiter.ts``.
  [EX] public migration notes built on live V3 exports of 14,533 time logs and
       141 issues (``billing_status`` values, ``log_hour``, ``approval {status}``,
       ``last_modified_time``, issue fields).
  [ZD] Zoho's documentation: https://projects.zoho.com/api-docs (V3 root
       ``projectsapi.zoho.com``, ``Authorization: Zoho-oauthtoken``, V3 errors,
       429); the V2 REST pages (users/clients, tasks, time logs); OAuth multi-DC
       https://www.zoho.com/accounts/protocol/oauth/multi-dc.html.

Base ``{api host}/api/v3/portal/{portal_id}``; the API and accounts hosts follow
the source's data centre (``worker.portal.auth``). Lists page with ``page``
(1-based) and ``per_page`` (≤ 200; billsync asks for 200) [GK, PA].

=========================================  ==========================================  =========
Request                                    Answer billsync reads                       Source
=========================================  ==========================================  =========
GET /projects                              a **bare array** (no ``page_info``): a      GK, PA
                                           page shorter than ``per_page`` is the last.
                                           No changed-since filter exists in V3 (the
                                           ``last_modified_time`` filter is V2's), so
                                           the list is read whole and filtered here.
  project                                  ``id`` (string), ``name``, ``status         GK
                                           {name}`` / ``project_type``, ``owner
                                           {zpuid, email, full_name}``,
                                           ``budget_info {currency}``,
                                           ``modified_time`` (ISO). No billing method
                                           or rate was seen in V3 (V2's top-level
                                           ``currency_code``, ``billing_type``,
                                           ``rate``/``project_rate``,
                                           ``budget_value`` are still read).
GET /projects/{id}/clients, else V2's      ``clients`` [``id``, ``name``]: the first   ZD
/restapi/portal/{p}/projects/{id}/clients/ is the primary client (no V3 way was
                                           found; the V2 path is used once the V3 one
                                           answers URL_RULE_NOT_CONFIGURED). A client
                                           without a currency has the project's.
GET /users                                 ``users`` [``zpuid``, ``full_name``/        GK, PA
                                           ``name``, ``email``, ``role`` (text or
                                           ``{name}``; "Administrator" is admin),
                                           ``active``/``is_active``]
GET /projects/{id}/milestones (or          ``milestones`` with ``page_info`` as a      PA
/phases)                                   one-item array; numeric or string ids
GET /projects/{id}/tasklists               ``tasklists`` [``milestone {id}``]          ZD
GET /projects/{id}/tasks                   ``tasks`` [``owners_and_work.owners``       PA, GK
                                           (V2 ``details.owners``; an owner with zuid
                                           0 is nobody), ``tasklist {id}``,
                                           ``milestone {id}``, ``status {name}``,
                                           ``billing_type`` in any case
                                           ("billable", "Non Billable")]
GET /projects/{id}/issues (or V2 /bugs)    ``issues`` [``name`` (V2 ``title``),         GK, EX
                                           ``severity {value}``, ``status {name}``,
                                           ``assignee`` ("Unassigned User": nobody)]
GET /projects/{id}/timelogs                ``time_logs`` [{``date``, ``log_details``   GK, EX
  ?module={"type": task|issue|general}     [log]}] and ``page_info``; 204 when
  &view_type=customdate                    empty. The ``module`` parameter is
  &start_date&end_date (YYYY-MM-DD,        required, so each window is read once per
  at most six months)                      log type.
  [&fetch_by_modified_time=true]
  log                                      ``id``, ``date``, ``log_hour`` "HH:MM",      EX, GK
                                           ``billing_status`` "Billable"/"Non
                                           Billable" (older clients ``bill_status``),
                                           ``approval {status}`` (older
                                           ``approval_status``), ``owner {zpuid,
                                           email}``, ``module_detail {id, type
                                           task|bug, name}``, ``notes``/``log_notes``,
                                           ``last_modified_time`` (ISO). Older
                                           spellings: ``total_minutes``,
                                           ``hours``+``minutes``, ``hours_display``,
                                           ``task {id}``/``bug {id}``, V2 day groups
                                           ``tasklogs``/``buglogs``/``generallogs``
                                           and ``task_logs``…, ``*_long`` versions.
GET /projects/{id}                         the project; 404 once deleted               PA
GET /projects/{id}/{milestones|tasklists|  the record; 404 once deleted
tasks|issues}/{record_id}
GET /projects/{id}/logs/{log_id}?type=     one time log (not /timelogs/{id}); 404      GK
                                           once deleted
=========================================  ==========================================  =========

Errors: V3 ``{"error": {"status_code", "title", "error_type", "details":
[{"message"}]}}`` (``INVALID_OAUTHTOKEN``; ``URL_RULE_NOT_CONFIGURED`` for a path
the API does not have), V2 ``{"error": {"code", "message"}}`` [ZD]. 429 and 5xx
are retried honouring ``Retry-After``; the request budget (about 100 calls per two
minutes per user, then a 30-minute lockout [PA, ZD Deluge pages]) is kept by
``worker.portal.budget`` so a large pull does not run into it.
"""

from worker.portal.allowed_hosts import PortalHostRefused, check_source_hosts
from worker.portal.auth import (
    DATA_CENTRES,
    AccessToken,
    CredentialsIncomplete,
    GrantExchangeFailed,
    access_token_for,
    api_base_url,
    exchange_grant_code,
    hosts,
)
from worker.portal.budget import budget_for
from worker.portal.client import LOG_TYPES, PortalClient, PortalError, PortalUnavailable
from worker.portal.converters import (
    Converter,
    convert_bug,
    convert_milestone,
    convert_project,
    convert_task,
    convert_tasklist,
    convert_timesheet,
    convert_user,
    modified_at,
    pull_event,
    to_event_data,
)

__all__ = [
    "AccessToken",
    "Converter",
    "CredentialsIncomplete",
    "DATA_CENTRES",
    "GrantExchangeFailed",
    "LOG_TYPES",
    "PortalClient",
    "PortalError",
    "PortalHostRefused",
    "PortalUnavailable",
    "access_token_for",
    "api_base_url",
    "budget_for",
    "check_source_hosts",
    "convert_bug",
    "convert_milestone",
    "convert_project",
    "convert_task",
    "convert_tasklist",
    "convert_timesheet",
    "convert_user",
    "exchange_grant_code",
    "hosts",
    "modified_at",
    "pull_event",
    "to_event_data",
]
