"""Integrations: one organization connected to one portal. Connecting, the
webhook secrets, the sealed pull credentials and their key, the lifecycle
(sync, edit, disable, enable, delete, status), the queue of sync runs, and the
webhook set-up an admin pastes into Zoho Projects."""

from worker.integrations.credential_box import (
    CredentialKeyError,
    credential_names,
    new_key,
    pull_source,
)
from worker.integrations.key_rotation import rotate_keys
from worker.integrations.lifecycle import (
    connect,
    delete_integration,
    disable,
    enable,
    history,
    request_sync,
    run_view,
    status,
    update_settings,
)
from worker.integrations.setup_guide import webhook_setup
from worker.integrations.store import (
    WebhookCredentials,
    get_integration,
    organization_integrations,
    rotate_secret,
    webhook_credentials,
)
from worker.integrations.sync_runs import (
    OPEN,
    RunKind,
    RunOutcome,
    SourceMissing,
    claim,
    finish,
    heartbeat,
    may_pull,
    recover_stale,
    request_run,
)

__all__ = [
    "may_pull",
    "CANCELLED",
    "CredentialKeyError",
    "FAILED",
    "INITIAL",
    "OPEN",
    "PENDING",
    "RECONCILIATION",
    "RESUME",
    "SUCCEEDED",
    "RunKind",
    "RunOutcome",
    "SourceMissing",
    "WebhookCredentials",
    "claim",
    "connect",
    "credential_names",
    "delete_integration",
    "disable",
    "enable",
    "finish",
    "get_integration",
    "heartbeat",
    "history",
    "new_key",
    "organization_integrations",
    "pull_source",
    "recover_stale",
    "request_run",
    "request_sync",
    "rotate_keys",
    "rotate_secret",
    "run_view",
    "status",
    "update_settings",
    "webhook_credentials",
    "webhook_setup",
]
