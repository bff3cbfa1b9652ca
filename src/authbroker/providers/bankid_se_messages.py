"""Deprecated: moved to :mod:`authbroker.providers.bankid_se.messages` (one minor release)."""

from __future__ import annotations

import warnings

from .bankid_se.messages import *  # noqa: F403

warnings.warn(
    "authbroker.providers.bankid_se_messages moved to authbroker.providers.bankid_se.messages",
    DeprecationWarning,
    stacklevel=2,
)
