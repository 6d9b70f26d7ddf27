"""The status page at ``/`` (placeholder until the page lands)."""

from __future__ import annotations

from flask import Blueprint

__all__ = ["blueprint"]

blueprint = Blueprint("status_page", __name__)
