"""Deprecated: moved to :mod:`authbroker.providers.oidc.profiles.bankid_no` (one minor release)."""

from __future__ import annotations

import warnings

from .oidc.profiles.bankid_no import *  # noqa: F403

warnings.warn(
    "authbroker.providers.bankid_no moved to authbroker.providers.oidc.profiles.bankid_no",
    DeprecationWarning,
    stacklevel=2,
)
