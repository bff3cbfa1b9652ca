"""Deprecated: moved to :mod:`authbroker.providers.oidc.profiles.ftn` (one minor release)."""

from __future__ import annotations

import warnings

from .oidc.profiles.ftn import *  # noqa: F403

warnings.warn(
    "authbroker.providers.ftn moved to authbroker.providers.oidc.profiles.ftn",
    DeprecationWarning,
    stacklevel=2,
)
