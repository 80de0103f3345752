"""Who is calling and what they may do: key roles, the permissions each
grants, the authenticated caller (``Principal``) and the scope of a sync
service call (``SourceScope``). Plain data with no I/O, so that processes
that only carry a caller along (the ingest validation workers) need not load
what authenticates one (``connlog.core.auth``)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceScope:
    """What a call of the sync service made for one sync source may write:
    that source's tenant, vendor and network."""

    source_id: str
    tenant_ref: int
    tenant_id: str
    vendor: int
    network_id: str
    enabled: bool


class Role(str, enum.Enum):  # noqa: UP042 - not StrEnum: its str() and format() differ
    """Key roles: the Mojo roles, device keys and the sync service's key."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMINISTRATOR = "administrator"
    SUPER_USER = "super_user"
    DEVICE = "device"
    SYNC_SERVICE = "sync_service"


class Permission(enum.Enum):
    """What an RPC needs."""

    READ_EVENTS = "read_events"
    WRITE_EVENTS = "write_events"
    MANAGE_SOURCES = "manage_sources"
    SYNC_EVENTS = "sync_events"  # ingest for a named sync source (IngestService only)


# Permissions whose RPCs write: each call draws on the key's write budget.
WRITE_PERMISSIONS = frozenset({Permission.WRITE_EVENTS, Permission.MANAGE_SOURCES, Permission.SYNC_EVENTS})


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ_EVENTS}),
    Role.OPERATOR: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS}),
    Role.ADMINISTRATOR: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS, Permission.MANAGE_SOURCES}),
    Role.SUPER_USER: frozenset({Permission.READ_EVENTS, Permission.WRITE_EVENTS, Permission.MANAGE_SOURCES}),
    # A device may only push its own events, through its own shape (enforced
    # by the shape's servicer and by connlog.ingest.normalise).
    Role.DEVICE: frozenset({Permission.WRITE_EVENTS}),
    # Ingest for one named sync source at a time, nothing else.
    Role.SYNC_SERVICE: frozenset({Permission.SYNC_EVENTS}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. A sync_service key has no tenant (its
    ``tenant_ref`` 0 is no tenant's, its ``tenant_id`` empty) until a call
    is scoped to a sync source (``for_source``)."""

    key_id: str
    tenant_id: str
    tenant_ref: int
    role: Role
    device_id: str | None
    shape: str | None = None  # device keys: the shape they write through
    source: SourceScope | None = None  # sync_service, scoped: the source the call writes for

    def can(self, permission: Permission) -> bool:
        return permission in _GRANTS[self.role]

    def for_source(self, scope: SourceScope) -> Principal:
        """The sync service acting for ``scope``'s source: its tenant."""
        if self.role is not Role.SYNC_SERVICE:
            raise ValueError("only the sync service's key acts for a sync source")
        return dataclasses.replace(self, tenant_id=scope.tenant_id, tenant_ref=scope.tenant_ref, source=scope)
