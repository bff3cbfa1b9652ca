"""Deprecated: moved to :mod:`authbroker.crypto.jose` (kept for one minor release)."""

from __future__ import annotations

import warnings

from .crypto.jose import *  # noqa: F403

warnings.warn("authbroker.jose moved to authbroker.crypto.jose", DeprecationWarning, stacklevel=2)
