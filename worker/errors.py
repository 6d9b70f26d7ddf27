"""The billsync error tree. Imports nothing of ours.

Every exception billsync raises on purpose is a ``BillsyncError``, in a family that
says what the caller should do about it; the classes live where they are raised
(a package may import this module, never the other way round), re-based here:

BillsyncError
├── NotFound                no such record for this organization: check the id
├── Conflict                contradicts the current state: change the state first
│   ├── IntegrationGone                 here
│   ├── IntegrationUnknown              worker.messaging.dead_letters
│   ├── NothingToInvoice                worker.billing.invoices
│   ├── RateMissing                     worker.billing.pricing
│   ├── SourceMissing                   worker.integrations.sync_runs
│   └── PullCancelled                   worker.pull.runner
├── Refused                 the request cannot be taken as given: change it, ask again
│   ├── InvalidCursor, InvalidFilter    worker.accounts.queries
│   ├── ProjectCreationRestricted       worker.accounts.invoicing_side
│   ├── InvalidEdit                     worker.messaging.dead_letters
│   ├── BlankName                       worker.db.tenancy
│   ├── UnknownDataCentre               worker.portal.auth
│   ├── PortalHostRefused               worker.portal.allowed_hosts
│   └── InvalidSignature                webhook_gateway.signatures
├── Unavailable             a dependency did not answer: retry later
│   ├── BrokerUnavailable, DatabaseUnavailable   here
│   │   └── DatabaseContention                   here
│   │       └── LockBusy                         worker.sync.writers.locks
│   ├── PortalUnavailable               worker.portal.errors
│   └── PullStalled                     worker.pull.runner
├── ConfigurationError      an operator must fix settings, keys, credentials or set-up
│   ├── CredentialKeyError (Missing, Invalid, Changed)  worker.integrations.credential_box
│   ├── CredentialsIncomplete, GrantExchangeFailed      worker.portal.auth
│   ├── SchemaNotCurrent, SchemaUnversioned             worker.db.migrate
│   │   └── SchemaAhead (a SchemaNotCurrent)            worker.db.migrate
│   ├── PortInUse, DataDirInUse                         worker.cli.preflight
│   └── InvalidConfiguration                            worker.cli
├── PermanentError          fails the same way every time: do not retry
│   ├── UndecodableMessage              here
│   ├── RecordOutsideContract           worker.pull.reader
│   └── PortalError (PortalAuthFailed)  worker.portal.errors
└── ApiError                an HTTP answer, already decided    webhook_gateway.errors
    └── (the status page's refusals)                           webhook_gateway.status_page

The domain's messages state facts (which record, what is missing) in its own words;
the gateway and the CLI add how to fix it in theirs (an API route, a command).
"""

from __future__ import annotations

__all__ = [
    "BillsyncError",
    "BrokerUnavailable",
    "ConfigurationError",
    "DatabaseContention",
    "Conflict",
    "DatabaseUnavailable",
    "IntegrationGone",
    "NotFound",
    "PermanentError",
    "Refused",
    "Unavailable",
    "UndecodableMessage",
]


class BillsyncError(Exception):
    """Root of every error billsync raises on purpose; its message is meant for people."""


class NotFound(BillsyncError):
    """No such record, or it belongs to another organization (never say which)."""


class Conflict(BillsyncError):
    """The request contradicts the current state (for example a second portal)."""


class IntegrationGone(Conflict):
    """The integration was deleted; it cannot change any more."""


class Refused(BillsyncError):
    """The request cannot be taken as given (invalid input, a failed check, a
    restriction): asking again unchanged gets the same answer."""


class Unavailable(BillsyncError):
    """A dependency (broker, database, portal, the worker) did not answer: may succeed
    if tried again later."""


class BrokerUnavailable(Unavailable):
    """The broker did not accept and confirm a publish within the configured bounds."""


class DatabaseUnavailable(Unavailable):
    """The database could not answer (down, unreachable, timed out): retry later."""


class DatabaseContention(DatabaseUnavailable):
    """Another transaction held what this one needed (a deadlock, a serialization
    failure, a lock that stayed busy): the database is fine, retry the work at once."""


class ConfigurationError(BillsyncError):
    """Settings, keys, credentials or the installation are wrong: an operator must fix
    them, retrying as is cannot help."""


class PermanentError(BillsyncError):
    """Will fail the same way every time: do not retry (a queue message is dead-lettered)."""


class UndecodableMessage(PermanentError):
    """A queue message whose body is not a valid QueueMessage."""
