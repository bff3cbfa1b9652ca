"""Deprecated: moved to :mod:`authbroker.cli.keys` (this shim goes in the next minor release)."""

from __future__ import annotations

import warnings

from .cli.keys import (
    generate_keys,
    group,
    public_jwks,
    read_private_jwks,
    rotate_keys,
    write_private_jwks,
)

__all__ = [
    "generate_keys",
    "group",
    "public_jwks",
    "read_private_jwks",
    "rotate_keys",
    "write_private_jwks",
]

warnings.warn("authbroker.keys_cli moved to authbroker.cli.keys", DeprecationWarning, stacklevel=2)
