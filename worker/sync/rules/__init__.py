"""The sync rules of the invoicing side, as small I/O-free decisions.

Each rule module takes a payload and what the database already holds and returns a
decision; ``worker.sync.apply`` does the lookups and the writes.
"""

from worker.sync.rules.reasons import REASONS, Reason

__all__ = ["REASONS", "Reason"]
