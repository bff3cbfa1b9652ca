"""Deprecated: moved to :mod:`authbroker.engines.tokens` (kept for one minor release)."""

import warnings

from .engines.tokens import (
    ACCESS_TOKEN_TYPE,
    AccessTokenClaims,
    AsyncTokenIssuer,
    TokenEngine,
    TokenIssuer,
    TokenPair,
    hash_refresh_token,
)

warnings.warn(
    "authbroker.tokens moved to authbroker.engines.tokens", DeprecationWarning, stacklevel=2
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AccessTokenClaims",
    "AsyncTokenIssuer",
    "TokenEngine",
    "TokenIssuer",
    "TokenPair",
    "hash_refresh_token",
]
