"""Portal calls an initial sync makes, and the time they take at Zoho's request budget.

    python -m tests.benchmarks.bench_pull_calls [--projects 1000] [--history-days 730]

Zoho allows about 100 API calls per two minutes per user, so an initial sync of a
large portal is bounded by its number of calls, not by CPU. This counts the calls
of every page an initial sync reads (the fake portal in this process, answering in
the V3 shapes: 10 tasks and 100 time logs per project), by endpoint, and turns
them into time at the budget (``BILLSYNC_PORTAL_RATE_CALLS`` per
``BILLSYNC_PORTAL_RATE_WINDOW_SECONDS``). The baseline is the same count with
``per_page=20``: what paging at 200 saves. No servers are needed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from tests.benchmarks.bench_pull import PORTAL_ID, read_everything
from tests.fake_portal import FakePortal
from worker.portal.auth import StaticToken
from worker.portal.client import PortalClient
from worker.pull.reader import time_windows
from worker.settings import Settings


def count_calls(portal: FakePortal, history_days: int, per_page: int) -> tuple[int, Counter[str]]:
    """(records read, calls by endpoint) for the pages an initial sync reads."""
    calls: Counter[str] = Counter()

    def counted(request: httpx.Request) -> httpx.Response:
        calls[_endpoint(request.url.path)] += 1
        return wsgi.handle_request(request)

    wsgi = httpx.WSGITransport(app=portal.app)
    with PortalClient(
        "http://portal.test",
        PORTAL_ID,
        StaticToken(portal.access_token),
        transport=httpx.MockTransport(counted),
        per_page=per_page,
    ) as client:
        records = read_everything(client, history_days)
    return records, calls


def _endpoint(path: str) -> str:
    parts = path.split("/")
    if "projects" not in parts:
        return parts[-1]
    after = parts[parts.index("projects") + 1 :]
    return "projects" if len(after) < 2 else after[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--history-days", type=int, default=Settings().pull_history_days)
    args = parser.parse_args()

    portal = FakePortal(PORTAL_ID)
    portal.seed(projects=args.projects, tasks_per_project=10, logs_per_task=10, without_client=0)
    budget = Settings()
    rate = budget.portal_rate_calls / budget.portal_rate_window_seconds
    today = datetime.now(UTC).date()
    windows = len(time_windows(today - timedelta(days=args.history_days), today))

    records, calls = count_calls(portal, args.history_days, per_page=200)
    _records, small_pages = count_calls(portal, args.history_days, per_page=20)
    total, baseline = sum(calls.values()), sum(small_pages.values())

    print(
        f"initial sync of {args.projects:,} projects, {records:,} records, "
        f"{args.history_days} days of time logs ({windows} windows x 3 log types)"
    )
    for endpoint, count in calls.most_common():
        print(f"  {endpoint:<10} {count:>8,} calls  {count / args.projects:>6.2f} per project")
    print(f"  total      {total:>8,} calls  {total / args.projects:>6.2f} per project")
    print(f"  per 1,000 projects: {total * 1000 / args.projects:,.0f} calls")
    print(
        f"  at {budget.portal_rate_calls} calls / {budget.portal_rate_window_seconds:.0f} s: "
        f"{total / rate / 3600:.1f} h ({total / rate:,.0f} s)"
    )
    print(f"  baseline per_page=20: {baseline:,} calls; per_page=200 = {total / baseline:.2f}x")


if __name__ == "__main__":
    main()
