"""Roles and what each may do (pure).

viewer   read dashboards and the API (of its projects, when the token is scoped)
owner    a viewer that also pushes readings, acks, silences, and sets budgets, rules and
         ignores of its own projects (scoped to them)
auditor  reads everything, including reports and the change log
admin    everything, including tokens and configuration reloads
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OWNER = "owner"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    READ_REPORTS = "read_reports"
    READ_CHANGES = "read_changes"
    PUSH = "push"
    ACK = "ack"
    SILENCE = "silence"
    MANAGE_PROJECT = "manage_project"
    """budgets, rules and ignores of a project"""
    RELOAD = "reload"
    MANAGE_TOKENS = "manage_tokens"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OWNER: frozenset(
        {Permission.READ, Permission.PUSH, Permission.ACK, Permission.SILENCE, Permission.MANAGE_PROJECT}
    ),
    Role.AUDITOR: frozenset({Permission.READ, Permission.READ_REPORTS, Permission.READ_CHANGES}),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a token's name, role and project scope (empty = every project)."""

    name: str
    role: Role
    projects: frozenset[str] = field(default_factory=frozenset)
    token_id: int | None = None
    expires_at: datetime | None = None

    def can(self, permission: Permission, project: str | None = None) -> bool:
        if permission not in GRANTS[self.role]:
            return False
        return project is None or not self.projects or project in self.projects

    def sees(self, project: str) -> bool:
        return not self.projects or project in self.projects

    def visible(self, projects: Iterable[str]) -> list[str]:
        return [p for p in projects if self.sees(p)]


ANONYMOUS = Principal("anonymous", Role.VIEWER)
