"""Deprecated: moved to :mod:`authbroker.cli.links` (this shim goes in the next minor release)."""

from __future__ import annotations

import warnings

from .cli.links import group

__all__ = ["group"]

warnings.warn(
    "authbroker.links_cli moved to authbroker.cli.links", DeprecationWarning, stacklevel=2
)
