"""Portal users: staff of the organization's projects (time-log owners become staff too)."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import UserData
from worker.db import StaffUser
from worker.portal import convert_user
from worker.sync.columns import RowContext
from worker.sync.modules.spec import ModuleSpec
from worker.sync.rules.staff import normalize_email
from worker.sync.writers.users import write_users

__all__ = ["SPEC"]


def columns(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, UserData)
    return {
        "name": data.name,
        "email": normalize_email(data.email),
        "role": data.role,
        "active": data.active,
    }


SPEC = ModuleSpec(
    module=Module.USERS,
    model=StaffUser,
    payload=UserData,
    columns=columns,
    writer=write_users,
    paths=("users",),
    converter=convert_user,
    # The deletes pass confirms each delete with a GET of the record, and billsync
    # reads no single user from the portal.
    detect_deletes=False,
)
