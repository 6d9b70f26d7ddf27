"""Webhook templates filled in as Zoho's field picker would fill them, for tests."""

from __future__ import annotations

import json
from typing import Any

from schemas.api import WebhookTemplate

# A value of each field kind, as text (Zoho fills a template with text).
SAMPLES = {
    "text": "Website redesign",
    "email": "ana@example.com",
    "date": "2026-11-24",
    "datetime": "2026-11-24T10:15:00Z",
    "minutes": "90",
    "decimal": "120.50",
    "boolean": "true",
    "currency": "USD",
}


def fill(template: WebhookTemplate, *, empty: tuple[str, ...] = ()) -> dict[str, Any]:
    """The event Zoho would send: each placeholder replaced by a value of its kind (a
    portal-like id of its own for each id field), and the ``empty`` paths by ""."""
    text = template.body_template
    for item in template.fields:
        if item.path in empty:
            value = ""
        elif item.kind == "id":
            value = "24475290000" + str(sum(map(ord, item.placeholder)))
        elif item.kind == "choice":
            value = item.allowed[0]
        else:
            value = SAMPLES[item.kind]
        text = text.replace(item.placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event
