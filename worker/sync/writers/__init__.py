"""Per-module writers: the database side of the sync rules, set-based per batch."""
