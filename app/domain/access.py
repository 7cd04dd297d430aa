"""Roles, what each may reach, and which sites a user works on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The person behind a request, as the server knows them for this session."""

    user_id: UUID
    session_id: UUID
    username: str
    full_name: str
    role: Role
    locale: str | None
    site_ids: frozenset[int]

    def may(self, allowed: frozenset[Role]) -> bool:
        return self.role in allowed

    def may_work_on(self, site_id: int) -> bool:
        """Admins reach every site; others only the sites they are assigned to."""
        return self.role is Role.ADMIN or site_id in self.site_ids

    @property
    def site_scope(self) -> frozenset[int] | None:
        """The sites this person works on, or None for every site (admins)."""
        return None if self.role is Role.ADMIN else self.site_ids


EVERYONE = frozenset(Role)
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
