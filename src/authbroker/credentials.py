"""Deprecated: moved to :mod:`authbroker.engines.credentials` (kept for one minor release)."""

import warnings

from .engines.credentials import (
    Argon2Params,
    AsyncCredentialManager,
    Blocklist,
    CredentialEngine,
    CredentialInfo,
    CredentialManager,
    PasswordPolicy,
    ThrottlePolicy,
    canonical_email,
    normalize_password,
)

warnings.warn(
    "authbroker.credentials moved to authbroker.engines.credentials",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "Argon2Params",
    "AsyncCredentialManager",
    "Blocklist",
    "CredentialEngine",
    "CredentialInfo",
    "CredentialManager",
    "PasswordPolicy",
    "ThrottlePolicy",
    "canonical_email",
    "normalize_password",
]
