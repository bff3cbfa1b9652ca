"""What the credential store returns: immutable records and rotation outcomes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """One user's mobile login. ``email`` is the canonical form (NFKC + casefold)."""

    user_id: str
    email: str | None = field(repr=False)
    password_hash: str | None = field(repr=False)
    status: str
    created_at: float
    changed_at: float


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device (app installation) that logged in with the password."""

    device_id: str
    user_id: str
    name: str
    created_at: float
    last_seen_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class FamilyRecord:
    """A refresh-token family: one login on one device and all its rotations."""

    family_id: str
    user_id: str
    device_id: str | None
    client_id: str
    scope: str
    created_at: float
    last_used_at: float
    expires_at: float
    revoked_at: float | None = None
    revoke_reason: str | None = None


class Rotation(enum.Enum):
    """What happened to a presented refresh token."""

    ROTATED = "rotated"  # the single successful use; a successor was stored
    UNKNOWN = "unknown"  # no such token (forged, purged, or from another deployment)
    REUSED = "reused"  # already rotated: the family has now been revoked
    REVOKED = "revoked"  # the family was revoked earlier
    EXPIRED = "expired"  # idle or absolute lifetime over; family revoked now


@dataclass(frozen=True, slots=True)
class RotationResult:
    outcome: Rotation
    family: FamilyRecord | None = None
    generation: int = 0


# --- schema ---------------------------------------------------------------------------
