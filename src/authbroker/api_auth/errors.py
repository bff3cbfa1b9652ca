"""Errors specific to signed API requests.

They subclass the classes of :mod:`authbroker.errors`, so code that catches
``InvalidSignature`` or ``AccessDenied`` keeps working, while a caller that needs to
tell a body tampering from a bad signature, or an inactive user from a wrong company,
can catch the precise class.
"""

from __future__ import annotations

from ..errors import AccessDenied, AuthBrokerError, InvalidSignature

__all__ = ["CompanyDenied", "DigestMismatch", "KeyRevoked", "UserInactive"]


class DigestMismatch(InvalidSignature):
    """The body does not match its ``Content-Digest`` (RFC 9530): it was changed."""

    default_code = "digest_mismatch"


class KeyRevoked(AuthBrokerError):
    """The signing key or the whole integration credential was revoked.

    Not an :class:`~authbroker.errors.AccessDenied`: the caller is not authenticated at
    all, which a web adapter answers with 401.
    """

    default_code = "key_revoked"
    http_status = 401
    user_message_key = "error.denied"


class UserInactive(AccessDenied):
    """The credential's user does not exist (any more) or is not active."""

    default_code = "user_inactive"


class CompanyDenied(AccessDenied):
    """The credential is not authorised for the company named in the request."""

    default_code = "company_denied"
