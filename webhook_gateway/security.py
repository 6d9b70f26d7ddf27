"""What every answer of the gateway carries for browsers, and the pull-source host refusal.

The headers matter for the status page (HTML with forms) and cost nothing on JSON:
no framing (clickjacking), scripts, styles and forms from this origin only, no
content-type guessing, and no page URL sent to other sites.
"""

from __future__ import annotations

from flask import Blueprint, Response

from schemas.responses import ErrorBody
from webhook_gateway.responses import respond
from worker.portal import PortalHostRefused

__all__ = ["SECURITY_HEADERS", "blueprint"]

blueprint = Blueprint("security", __name__)

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin: the status page's own POSTs keep a Referer to check, other sites get none.
    "Referrer-Policy": "same-origin",
}


_SECURITY_HEADERS_LOWER = tuple(
    (name.lower(), name, value) for name, value in SECURITY_HEADERS.items()
)


@blueprint.after_app_request
def _security_headers(response: Response) -> Response:
    # Each answer has few headers: one pass over them is cheaper than a setdefault per
    # header (werkzeug looks each one up and validates it again: a webhook's cost).
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    for lower, name, value in _SECURITY_HEADERS_LOWER:
        if lower not in present:
            headers.add(name, value)
    return response


@blueprint.app_errorhandler(PortalHostRefused)
def _portal_host_refused(exc: PortalHostRefused) -> tuple[Response, int]:
    """422 naming the field and the setting that would allow the host."""
    body = ErrorBody(
        error="portal_host_not_allowed",
        message=str(exc),
        details=[{"path": f"source.{exc.field}", "message": str(exc)}],
    )
    return respond(body, 422)
