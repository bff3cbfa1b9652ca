"""Deprecated: moved to :mod:`authbroker.providers.oidc.profiles.tara` (one minor release)."""

from __future__ import annotations

import warnings

from .oidc.profiles.tara import *  # noqa: F403

warnings.warn(
    "authbroker.providers.tara moved to authbroker.providers.oidc.profiles.tara",
    DeprecationWarning,
    stacklevel=2,
)
