"""The portal side of the pull path: a client of the portal's REST API (V3).

What billsync speaks, chosen from PORTAL_API.md part B and the sourced notes in
``shared/research/zoho-apis.md`` (V3 is the generation to build on; where the
public evidence disagrees, the choice is written here and the reader accepts the
documented V2 spellings too):

Base ``{source.base_url}/api/v3/portal/{portal_id}``. Every request carries
``Authorization: Zoho-oauthtoken <access_token>``. Lists page with ``page``
(1-based) and ``per_page`` (≤ 200) and answer ``page_info`` {``page``,
``per_page``, ``has_next_page``} (also ``has_more_page``; sometimes a one-item
array). An empty list may be HTTP 204 with no body. Errors are V3
``{"error": {"status_code", "title", "details": [{"message"}]}}`` or V2
``{"error": {"code", "message"}}``; 429 carries ``Retry-After``.

Lists (record keys in brackets; ``modified_time`` is ISO-8601, V2 ``*_long`` ms
are accepted):

- ``GET /projects?sort_column=last_modified_time&sort_order=ascending
  [&last_modified_time=<ms>]`` → ``projects`` [id, name, status (string or
  {name}), currency_code, billing_type, rate, budget_value, owner {zpuid|id, name,
  email}, custom_fields ({label: value} or [{label: value}]), crm_id, modified_time]
- ``GET /projects/{id}/clients`` → ``clients`` [id, name, email, currency_code,
  crm_id]; the first client is the project's primary client.
- ``GET /users`` → ``users`` [zpuid|id, name, email, role, active, modified_time]
- ``GET /projects/{id}/milestones[?last_modified_time=<ms>]`` → ``milestones``
  [id, name, status, start_date, end_date, modified_time]
- ``GET /projects/{id}/tasklists[?last_modified_time=<ms>]`` → ``tasklists``
  [id, name, milestone {id} | milestone_id, modified_time]
- ``GET /projects/{id}/tasks`` (no changed-since filter) → ``tasks`` [id, name,
  tasklist {id}, milestone_id, status {name}, billing_type (V2 billingtype), rate,
  owners [{zpuid|id, name, email}] (V2 details.owners), custom_fields, modified_time]
- ``GET /projects/{id}/bugs`` (no filter) → ``bugs`` [id, title, status {type},
  severity {type}, assignee {zpuid|id, name, email}, modified_time]
- ``GET /projects/{id}/timelogs?view_type=customdate&start_date=YYYY-MM-DD
  &end_date=YYYY-MM-DD[&fetch_by_modified_time=true]`` (window ≤ 6 months; by
  modification date with the flag, else by log date) → ``time_logs`` [{date,
  log_details [id, date, total_minutes | log_hour "H:MM", bill_status,
  approval_status, owner {zpuid|id, name, email}, module_detail {id, type
  task|bug|general, name}, notes, modified_time]}]
- One record: ``GET /projects/{id}``, ``/projects/{id}/{milestones|tasklists|
  tasks|bugs|timelogs}/{record_id}`` → 200, or 404 once it is deleted. The pull
  uses these to confirm a deletion before it emits one.
"""
