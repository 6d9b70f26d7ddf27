"""Who is asking and what they may see: organizations (tenants), API tokens and
status-page sessions, ownership checks, the records made on the invoicing side
(customers, users of the organization, local projects) and the read queries of the
API, every one scoped to the caller's organization."""

from worker.accounts.invoicing_side import (
    ProjectCreationRestricted,
    create_customer,
    create_invoice_user,
    create_project,
)
from worker.accounts.organizations import (
    ROLES,
    Principal,
    authenticate,
    create_organization,
    hash_token,
    issue_token,
    list_tokens,
    revoke_token,
)
from worker.accounts.ownership import owned
from worker.accounts.queries import (
    RESOURCES,
    InvalidCursor,
    InvalidFilter,
    Resource,
    decode_cursor,
    get_record,
    list_records,
    serialize,
)
from worker.accounts.status_sessions import LoggedIn, end_session, find_session, start_session

__all__ = [
    "InvalidCursor",
    "InvalidFilter",
    "LoggedIn",
    "Principal",
    "ProjectCreationRestricted",
    "RESOURCES",
    "ROLES",
    "Resource",
    "authenticate",
    "create_customer",
    "create_invoice_user",
    "create_organization",
    "create_project",
    "decode_cursor",
    "end_session",
    "find_session",
    "get_record",
    "hash_token",
    "issue_token",
    "list_records",
    "list_tokens",
    "owned",
    "revoke_token",
    "serialize",
    "start_session",
]
