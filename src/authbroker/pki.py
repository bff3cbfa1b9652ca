"""Deprecated: moved to :mod:`authbroker.crypto.pki` (kept for one minor release)."""

from __future__ import annotations

import warnings

from .crypto.pki import *  # noqa: F403

warnings.warn("authbroker.pki moved to authbroker.crypto.pki", DeprecationWarning, stacklevel=2)
