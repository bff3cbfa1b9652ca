"""Deprecated: moved to :mod:`authbroker.providers.oidc.profiles.broker_oidc`."""

from __future__ import annotations

import warnings

from .oidc.profiles.broker_oidc import *  # noqa: F403

warnings.warn(
    "authbroker.providers.broker_oidc moved to authbroker.providers.oidc.profiles.broker_oidc",
    DeprecationWarning,
    stacklevel=2,
)
