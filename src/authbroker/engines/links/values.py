"""What the link operations return: :class:`IssuedLink`, :class:`OtpChallenge`,
:class:`LinkGrant`. Bearer values (URLs, ids) stay out of every ``repr`` (LOG-02)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...errors import Expired, ScopeDenied

__all__ = ["IssuedLink", "LinkGrant", "OtpChallenge"]


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """What :meth:`DirectLinks.issue_link` returns; ``url`` is a bearer secret."""

    url: str = field(repr=False)
    link_id: str = field(repr=False)
    expires_at: float

    def __repr__(self) -> str:
        return f"IssuedLink(link={self.link_id[:8]}..., expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class OtpChallenge:
    """A code was sent; the page asks for it. ``challenge_id`` goes in a cookie/form."""

    challenge_id: str = field(repr=False)
    masked_phone: str
    expires_at: float
    resend_after: float


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """Access to exactly ``scope`` on ``resource`` for ``user_id`` until ``expires_at``."""

    user_id: str = field(repr=False)
    scope: str
    resource: str
    expires_at: float
    link_id: str = field(repr=False)

    def allows(self, scope: str, resource: str, *, now: float | None = None) -> bool:
        """True only for the exact scope and resource, while the grant is live."""
        current = time.time() if now is None else now
        return current < self.expires_at and scope == self.scope and resource == self.resource

    def require(self, scope: str, resource: str, *, now: float | None = None) -> None:
        """Raise :class:`ScopeDenied` (step-up needed) unless :meth:`allows`."""
        current = time.time() if now is None else now
        if current >= self.expires_at:
            raise Expired("the link session has expired", code="grant_expired")
        if not self.allows(scope, resource, now=current):
            raise ScopeDenied("outside the scope of this link", code="link_scope")
