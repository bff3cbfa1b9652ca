"""Deprecated: moved to :mod:`authbroker.crypto.cms` (kept for one minor release)."""

from __future__ import annotations

import warnings

from .crypto.cms import *  # noqa: F403

warnings.warn("authbroker.cms moved to authbroker.crypto.cms", DeprecationWarning, stacklevel=2)
