"""Durable storage for mobile credentials, devices and refresh-token families.

Passwords of the mobile apps and the refresh-token lineage must survive restarts and
be shared by every application instance, so they live in SQL (DESIGN "State"), not
in the key-value :mod:`authbroker.store`. This module is the only one that talks SQL;
it uses SQLAlchemy Core so the same code runs on SQLite (the default, one host) and
PostgreSQL (production, tested against a real server).

Choices:

* **One synchronous implementation.** SQLAlchemy's asyncio layer needs ``greenlet``
  plus an async driver (aiosqlite / psycopg async) and gives two code paths to keep
  equal. The engines in :mod:`authbroker.engines.credentials` and
  :mod:`authbroker.engines.tokens` instead hand these short blocking calls to the
  runtime as ``offload`` effects (a worker thread under asyncio); argon2 hashing must
  leave the event loop anyway.
* **Atomic single use.** Rotating a refresh token is one transaction whose decisive
  statement is ``UPDATE refresh_tokens SET used = 1 WHERE token_hash = :h AND
  used = 0``; exactly one concurrent caller sees ``rowcount == 1`` (RFC 9700 §4.14.2,
  security requirement TOK-04). On SQLite every transaction starts with ``BEGIN
  IMMEDIATE`` (writers queue on the file lock instead of failing an upgrade); on
  PostgreSQL the row lock taken by the UPDATE serialises the contenders and the
  losers re-check ``used = 0`` after the winner commits (READ COMMITTED).
* **Only hashes of refresh tokens** are stored (SHA-256 of a 256-bit random value;
  a plain hash suffices for a high-entropy secret, ASVS 6.5.2).
* **Migrations** are numbered steps recorded in a ``schema_version`` table; each
  step only creates what is absent, so starting several instances at once is safe.

The package splits the store by concern: ``records`` (what it returns), ``schema``
(tables, SQLite settings, the version row), ``database`` (engine, transactions and
migrations), and one module per table family: ``credentials``, ``devices`` and
``families`` (refresh-token families and rotation). It imports nothing from the
engines (:mod:`authbroker.engines.tokens` imports it), so it stays importable on its
own.
"""

from __future__ import annotations

from .credentials import CredentialsTable
from .devices import DevicesTable
from .families import FamiliesTable
from .records import CredentialRecord, DeviceRecord, FamilyRecord, Rotation, RotationResult
from .schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "CredentialRecord",
    "CredentialStore",
    "DeviceRecord",
    "FamilyRecord",
    "Rotation",
    "RotationResult",
]


class CredentialStore(FamiliesTable, DevicesTable, CredentialsTable):
    """SQLAlchemy Core access to the credential tables.

    ``url`` is a SQLAlchemy URL: ``sqlite:///credentials.db`` (default backend) or
    ``postgresql+psycopg://user@host/db``. ``schema`` (PostgreSQL) and ``prefix``
    (table-name prefix) let several deployments or test runs share one database.
    """
