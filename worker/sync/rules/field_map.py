"""The integration's field map: which portal custom fields land in which invoicing ones."""

from __future__ import annotations

from typing import Any

__all__ = ["mapped_custom_fields"]


def mapped_custom_fields(
    custom_fields: dict[str, Any], mappings: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """Custom fields as the invoicing side names them.

    With no mapping for the module, the portal's custom fields are kept as they came;
    with one, only the mapped fields are kept, under their invoicing names.
    """
    if not mappings:
        return dict(custom_fields)
    return {
        m["target"]: custom_fields[m["source"]] for m in mappings if m["source"] in custom_fields
    }
