"""The one exception hierarchy of authbroker.

Every failure that crosses the library's boundary is an :class:`AuthBrokerError`.
Callers catch the class that says what they can do about it (show a "cancelled"
page, ask the user to retry later, alert an operator) instead of parsing text.

Messages are written to be safe in logs: they never carry secrets, tokens,
one-time codes, full identity numbers or raw provider payloads. Where detail
helps debugging, it goes in ``code`` (a stable machine-readable reason) and in
``details`` (only non-secret values), never in a formatted copy of the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "AlreadyUsed",
    "AuthBrokerError",
    "ConfigError",
    "Expired",
    "FlowNotFound",
    "InsufficientLoa",
    "InternalError",
    "InvalidInput",
    "InvalidSignature",
    "Locked",
    "ProviderError",
    "ProviderUnavailable",
    "RateLimited",
    "ScopeDenied",
    "StoreUnavailable",
    "UntrustedCertificate",
    "UserCancelled",
]


class AuthBrokerError(Exception):
    """Base class of every error authbroker raises on purpose.

    ``code`` is a short stable identifier (``"state_mismatch"``, ``"bad_mac"``) for
    programs and metrics; ``str(error)`` is a human sentence safe to log;
    ``user_message`` is what a hosted page may show an end user.
    """

    default_code: ClassVar[str] = "error"
    #: HTTP status a web adapter answers with when this error ends a request.
    http_status: ClassVar[int] = 400
    #: Localization key of the end-user message shown by hosted pages.
    user_message_key: ClassVar[str] = "error.generic"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: Mapping[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigError(AuthBrokerError):
    """The configuration is missing a key, has a bad value or an unsafe setting.

    ``key`` names the exact configuration key (``"providers.ftn.client_id"``) so the
    operator can fix it without reading code.
    """

    default_code = "config"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        full = f"{key}: {message}" if key else message
        super().__init__(full, code=code, details=details)
        self.key = key
        #: The reason without the key prefix (for tools that print the key themselves).
        self.reason = message
        #: Every problem found (a validation pass reports all at once); ``(self,)``
        #: for a single problem, so callers can always iterate.
        self.errors: tuple[ConfigError, ...] = (self,)

    @classmethod
    def combine(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error carrying every problem of a validation pass.

        An operator fixing a configuration should see the whole list at once instead
        of one error per restart. A single problem is returned as it is.
        """
        flat = [inner for error in errors for inner in error.errors]
        if not flat:
            raise ValueError("no errors to combine")
        if len(flat) == 1:
            return flat[0]
        lines = "\n".join(f"  - {error.message}" for error in flat)
        combined = cls(f"{len(flat)} configuration errors:\n{lines}")
        combined.errors = tuple(flat)
        return combined


class InvalidInput(AuthBrokerError):
    """Input from a provider or a client is malformed, forged or inconsistent."""

    default_code = "invalid_input"
    user_message_key = "error.invalid"


class InvalidSignature(InvalidInput):
    """A signature, MAC or authentication tag did not verify."""

    default_code = "invalid_signature"


class UntrustedCertificate(InvalidInput):
    """A certificate does not chain to a configured trust anchor, is revoked,
    has the wrong key usage or policy, or is outside its validity period."""

    default_code = "untrusted_certificate"


class Expired(AuthBrokerError):
    """A time-limited artifact (token, link, code, flow, certificate) has expired."""

    default_code = "expired"
    user_message_key = "error.expired"


class AlreadyUsed(AuthBrokerError):
    """A single-use artifact was presented again (replay)."""

    default_code = "replayed"
    user_message_key = "error.replayed"


class FlowNotFound(AuthBrokerError):
    """No live flow with this id exists for this browser (expired, finished or forged)."""

    default_code = "flow_not_found"
    http_status = 404
    user_message_key = "error.expired"


class RateLimited(AuthBrokerError):
    """Too many attempts; ``retry_after`` seconds (if known) until the next is allowed."""

    default_code = "rate_limited"
    http_status = 429
    user_message_key = "error.rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


class Locked(RateLimited):
    """The artifact or account is locked after too many failures."""

    default_code = "locked"
    user_message_key = "error.locked"


class ProviderUnavailable(AuthBrokerError):
    """A provider (or the network to it) failed, timed out or answered 5xx."""

    default_code = "provider_unavailable"
    http_status = 503
    user_message_key = "error.unavailable"


class StoreUnavailable(ProviderUnavailable):
    """The state store (Redis, SQLite, SQL) could not be reached in time."""

    default_code = "store_unavailable"


class ProviderError(AuthBrokerError):
    """The provider reported a final error that is not the user's choice."""

    default_code = "provider_error"
    http_status = 502
    user_message_key = "error.provider"


class UserCancelled(AuthBrokerError):
    """The user cancelled at the provider."""

    default_code = "cancelled"
    user_message_key = "error.cancelled"


class AccessDenied(AuthBrokerError):
    """The caller is authenticated but not allowed to do this."""

    default_code = "access_denied"
    http_status = 403
    user_message_key = "error.denied"


class InsufficientLoa(AccessDenied):
    """The session's level of assurance is below what the action needs (step-up)."""

    default_code = "insufficient_loa"


class ScopeDenied(AccessDenied):
    """A limited session (direct link, mobile token) tried to reach outside its scope."""

    default_code = "scope_denied"


class InternalError(ProviderError):
    """Something failed that was not expected to (a bug in an adapter, an exception
    that no rule foresaw). The original exception is chained as ``__cause__``; the
    message and ``details`` name only its class, as its text may carry request data.
    """

    default_code = "internal"
    http_status = 500
    user_message_key = "error.internal"
