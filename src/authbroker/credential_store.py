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
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .errors import AuthBrokerError, ConfigError, InvalidInput, StoreUnavailable

__all__ = [
    "SCHEMA_VERSION",
    "CredentialRecord",
    "CredentialStore",
    "DeviceRecord",
    "FamilyRecord",
    "Rotation",
    "RotationResult",
]

#: Version of the schema this code writes (see ``_MIGRATIONS``).
SCHEMA_VERSION = 1
_COMPONENT = "mobile-credentials"


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """One user's mobile login. ``email`` is the canonical form (NFKC + casefold)."""

    user_id: str
    email: str | None = field(repr=False)
    password_hash: str | None = field(repr=False)
    status: str
    created_at: float
    changed_at: float


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A device (app installation) that logged in with the password."""

    device_id: str
    user_id: str
    name: str
    created_at: float
    last_seen_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class FamilyRecord:
    """A refresh-token family: one login on one device and all its rotations."""

    family_id: str
    user_id: str
    device_id: str | None
    client_id: str
    scope: str
    created_at: float
    last_used_at: float
    expires_at: float
    revoked_at: float | None = None
    revoke_reason: str | None = None


class Rotation(enum.Enum):
    """What happened to a presented refresh token."""

    ROTATED = "rotated"  # the single successful use; a successor was stored
    UNKNOWN = "unknown"  # no such token (forged, purged, or from another deployment)
    REUSED = "reused"  # already rotated: the family has now been revoked
    REVOKED = "revoked"  # the family was revoked earlier
    EXPIRED = "expired"  # idle or absolute lifetime over; family revoked now


@dataclass(frozen=True, slots=True)
class RotationResult:
    outcome: Rotation
    family: FamilyRecord | None = None
    generation: int = 0


# --- schema ---------------------------------------------------------------------------


def _tables(metadata: sa.MetaData, prefix: str) -> dict[str, sa.Table]:
    t: dict[str, sa.Table] = {}
    t["schema_version"] = sa.Table(
        f"{prefix}schema_version",
        metadata,
        sa.Column("component", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.Float, nullable=False),
    )
    t["credentials"] = sa.Table(
        f"{prefix}credentials",
        metadata,
        sa.Column("user_id", sa.String(255), primary_key=True),
        # NULL once removed, so the address can be enrolled again (UNIQUE allows
        # several NULLs on SQLite and PostgreSQL).
        sa.Column("email", sa.String(320), nullable=True, unique=True),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    t["devices"] = sa.Table(
        f"{prefix}devices",
        metadata,
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    t["families"] = sa.Table(
        f"{prefix}refresh_families",
        metadata,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=True, index=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
    )
    t["tokens"] = sa.Table(
        f"{prefix}refresh_tokens",
        metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False, index=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("used", sa.Integer, nullable=False, default=0),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    return t


def _unavailable(exc: BaseException) -> StoreUnavailable:
    # Driver messages can quote SQL parameters (e-mail addresses, hashes): only the
    # exception class goes into the error.
    return StoreUnavailable(
        "the credential database failed",
        code="store_unavailable",
        details={"error": type(exc).__name__},
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = FULL")
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_immediate(engine: Engine) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` with a busy timeout.

    pysqlite's own deferred BEGIN lets two readers both try to upgrade to a writer,
    and one of them fails with "database is locked" instead of waiting; taking the
    write lock up front makes contenders queue (SQLite docs, "Transactions").
    Registered once per engine, so several stores may share one engine.
    """
    if not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
    if not event.contains(engine, "begin", _sqlite_on_begin):
        event.listen(engine, "begin", _sqlite_on_begin)


class CredentialStore:
    """SQLAlchemy Core access to the credential tables.

    ``url`` is a SQLAlchemy URL: ``sqlite:///credentials.db`` (default backend) or
    ``postgresql+psycopg://user@host/db``. ``schema`` (PostgreSQL) and ``prefix``
    (table-name prefix) let several deployments or test runs share one database.
    """

    def __init__(
        self,
        url: str | Engine,
        *,
        schema: str | None = None,
        prefix: str = "ab_",
        migrate: bool = True,
        now: Callable[[], float] = time.time,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not prefix.replace("_", "").isalnum() and prefix:
            raise ConfigError("table prefix must be alphanumeric or _", key="credentials.prefix")
        self.now = now
        if isinstance(url, Engine):
            self.engine = url
        else:
            try:
                options = dict(engine_options or {})
                options.setdefault("pool_pre_ping", True)
                if url.startswith("sqlite"):
                    options.setdefault("connect_args", {"check_same_thread": False})
                self.engine = sa.create_engine(url, **options)
            except (SQLAlchemyError, ImportError, ValueError) as exc:
                raise ConfigError(
                    "cannot create the credential database engine",
                    key="credentials.database_url",
                    details={"error": type(exc).__name__},
                ) from exc
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            _sqlite_immediate(self.engine)
            self._sqlite_wal()
        self.metadata = sa.MetaData(schema=schema)
        self.t = _tables(self.metadata, prefix)
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"CredentialStore(dialect={self.dialect!r})"

    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, integrity_errors: bool = False) -> Iterator[Connection]:
        """One transaction; database failures become :class:`StoreUnavailable`.

        With ``integrity_errors`` a constraint violation propagates as is, for a
        caller that gives it a meaning (``email_taken``).
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except AuthBrokerError:
            raise
        except IntegrityError as exc:
            if integrity_errors:
                raise
            raise _unavailable(exc) from exc
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    def _sqlite_wal(self) -> None:
        """Write-ahead log: one fsync per commit instead of the rollback journal's
        several, and readers never block the writer. The mode is stored in the file."""
        if self.engine.url.database in (None, "", ":memory:"):
            return
        try:
            # On the driver connection: SQLAlchemy would wrap it in our BEGIN
            # IMMEDIATE, and the journal mode cannot change inside a transaction.
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("PRAGMA journal_mode = WAL")
                cur.close()
            finally:
                raw.close()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise _unavailable(exc) from exc

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before.

        Steps are idempotent (``CREATE ... IF NOT EXISTS`` via ``checkfirst``), so two
        instances migrating at the same moment both succeed; a concurrent insert of
        the version row is tolerated.
        """
        sv = self.t["schema_version"]
        try:
            sv.create(self.engine, checkfirst=True)
        except SQLAlchemyError:
            # Another instance may have created it between check and create.
            try:
                sv.create(self.engine, checkfirst=True)
            except SQLAlchemyError as exc:
                raise _unavailable(exc) from exc
        with self._tx() as conn:
            found = conn.execute(
                sa.select(sv.c.version).where(sv.c.component == _COMPONENT)
            ).scalar_one_or_none()
        current = int(found or 0)
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"credential schema version {current} is newer than this authbroker "
                f"({SCHEMA_VERSION}); upgrade authbroker",
                key="credentials.database_url",
                code="schema_too_new",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[version](self)
        if current < SCHEMA_VERSION:
            with self._tx(integrity_errors=True) as conn:
                if found is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                sv.insert().values(
                                    component=_COMPONENT,
                                    version=SCHEMA_VERSION,
                                    applied_at=self.now(),
                                )
                            )
                    except IntegrityError:
                        pass  # a concurrent instance recorded it
                else:
                    conn.execute(
                        sv.update()
                        .where(sv.c.component == _COMPONENT, sv.c.version < SCHEMA_VERSION)
                        .values(version=SCHEMA_VERSION, applied_at=self.now())
                    )
        return current

    def schema_version(self) -> int:
        sv = self.t["schema_version"]
        with self._tx() as conn:
            found = conn.execute(
                sa.select(sv.c.version).where(sv.c.component == _COMPONENT)
            ).scalar_one_or_none()
        return int(found or 0)

    def _create_v1(self) -> None:
        names = ("credentials", "devices", "families", "tokens")
        for name in names:
            try:
                self.t[name].create(self.engine, checkfirst=True)
            except SQLAlchemyError:
                try:
                    self.t[name].create(self.engine, checkfirst=True)
                except SQLAlchemyError as exc:
                    raise _unavailable(exc) from exc

    def drop_all(self) -> None:
        """Drop every table of this store (tests, uninstall)."""
        try:
            self.metadata.drop_all(self.engine)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    # --- credentials ------------------------------------------------------------------

    @staticmethod
    def _credential(row: Any) -> CredentialRecord:
        return CredentialRecord(
            user_id=row.user_id,
            email=row.email,
            password_hash=row.password_hash,
            status=row.status,
            created_at=float(row.created_at),
            changed_at=float(row.changed_at),
        )

    def credential_by_email(self, email: str) -> CredentialRecord | None:
        """The active credential for a canonical address, or None."""
        c = self.t["credentials"]
        with self._tx() as conn:
            row = conn.execute(
                sa.select(c).where(c.c.email == email, c.c.status == "active")
            ).first()
        return None if row is None else self._credential(row)

    def credential_by_user(self, user_id: str) -> CredentialRecord | None:
        c = self.t["credentials"]
        with self._tx() as conn:
            row = conn.execute(sa.select(c).where(c.c.user_id == user_id)).first()
        return None if row is None else self._credential(row)

    def put_credential(self, user_id: str, email: str, password_hash: str, now: float) -> None:
        """Create the user's credential (or re-create a removed one).

        :class:`InvalidInput` ``email_taken`` when another user holds the address,
        ``already_enrolled`` when this user has an active credential.
        """
        c = self.t["credentials"]
        try:
            with self._tx(integrity_errors=True) as conn:
                existing = conn.execute(
                    sa.select(c.c.status).where(c.c.user_id == user_id)
                ).scalar_one_or_none()
                if existing == "active":
                    raise InvalidInput(
                        "a mobile password is already set; change it instead",
                        code="already_enrolled",
                    )
                values = {
                    "email": email,
                    "password_hash": password_hash,
                    "status": "active",
                    "created_at": now,
                    "changed_at": now,
                }
                if existing is None:
                    conn.execute(c.insert().values(user_id=user_id, **values))
                else:
                    conn.execute(c.update().where(c.c.user_id == user_id).values(**values))
        except IntegrityError as exc:
            # UNIQUE(email) or a concurrent enrollment of the same user.
            raise InvalidInput("this e-mail address cannot be used", code="email_taken") from exc

    def set_password_hash(
        self, user_id: str, password_hash: str, now: float, *, expected_old: str | None = None
    ) -> bool:
        """Replace the hash; with ``expected_old`` only if it is still that (rehash)."""
        c = self.t["credentials"]
        cond = [c.c.user_id == user_id, c.c.status == "active"]
        values: dict[str, Any] = {"password_hash": password_hash}
        if expected_old is not None:
            cond.append(c.c.password_hash == expected_old)
        else:
            values["changed_at"] = now
        with self._tx() as conn:
            return conn.execute(c.update().where(*cond).values(**values)).rowcount == 1

    def remove_credential(self, user_id: str, now: float) -> bool:
        c = self.t["credentials"]
        with self._tx() as conn:
            res = conn.execute(
                c.update()
                .where(c.c.user_id == user_id, c.c.status == "active")
                .values(status="removed", email=None, password_hash=None, changed_at=now)
            )
            return res.rowcount == 1

    # --- devices ----------------------------------------------------------------------

    @staticmethod
    def _device(row: Any) -> DeviceRecord:
        return DeviceRecord(
            device_id=row.device_id,
            user_id=row.user_id,
            name=row.name,
            created_at=float(row.created_at),
            last_seen_at=float(row.last_seen_at),
            revoked_at=None if row.revoked_at is None else float(row.revoked_at),
        )

    def add_device(self, device_id: str, user_id: str, name: str, now: float) -> DeviceRecord:
        d = self.t["devices"]
        with self._tx() as conn:
            conn.execute(
                d.insert().values(
                    device_id=device_id,
                    user_id=user_id,
                    name=name,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return DeviceRecord(device_id, user_id, name, now, now)

    def list_devices(self, user_id: str, *, include_revoked: bool = False) -> list[DeviceRecord]:
        d = self.t["devices"]
        query = sa.select(d).where(d.c.user_id == user_id)
        if not include_revoked:
            query = query.where(d.c.revoked_at.is_(None))
        with self._tx() as conn:
            rows = conn.execute(query.order_by(d.c.created_at, d.c.device_id)).all()
        return [self._device(r) for r in rows]

    def revoke_device(self, user_id: str, device_id: str, now: float) -> bool:
        """Revoke one of the user's devices and every refresh family bound to it."""
        d, f = self.t["devices"], self.t["families"]
        with self._tx() as conn:
            res = conn.execute(
                d.update()
                .where(
                    d.c.device_id == device_id,
                    d.c.user_id == user_id,
                    d.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            if res.rowcount != 1:
                return False
            conn.execute(
                f.update()
                .where(f.c.device_id == device_id, f.c.revoked_at.is_(None))
                .values(revoked_at=now, revoke_reason="device_revoked")
            )
        return True

    def revoke_all_devices(self, user_id: str, now: float) -> int:
        d = self.t["devices"]
        with self._tx() as conn:
            res = conn.execute(
                d.update()
                .where(d.c.user_id == user_id, d.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return int(res.rowcount)

    # --- refresh-token families -------------------------------------------------------

    @staticmethod
    def _family(row: Any) -> FamilyRecord:
        return FamilyRecord(
            family_id=row.family_id,
            user_id=row.user_id,
            device_id=row.device_id,
            client_id=row.client_id,
            scope=row.scope,
            created_at=float(row.created_at),
            last_used_at=float(row.last_used_at),
            expires_at=float(row.expires_at),
            revoked_at=None if row.revoked_at is None else float(row.revoked_at),
            revoke_reason=row.revoke_reason,
        )

    def create_family(
        self, family: FamilyRecord, first_token_hash: str, *, device_name: str | None = None
    ) -> None:
        """Store a new family and its first token; with ``device_name`` also the
        device row for ``family.device_id`` (one transaction: one commit per login)."""
        f, tk, d = self.t["families"], self.t["tokens"], self.t["devices"]
        with self._tx() as conn:
            if device_name is not None and family.device_id is not None:
                conn.execute(
                    d.insert().values(
                        device_id=family.device_id,
                        user_id=family.user_id,
                        name=device_name,
                        created_at=family.created_at,
                        last_seen_at=family.created_at,
                    )
                )
            conn.execute(
                f.insert().values(
                    family_id=family.family_id,
                    user_id=family.user_id,
                    device_id=family.device_id,
                    client_id=family.client_id,
                    scope=family.scope,
                    created_at=family.created_at,
                    last_used_at=family.last_used_at,
                    expires_at=family.expires_at,
                )
            )
            conn.execute(
                tk.insert().values(
                    token_hash=first_token_hash,
                    family_id=family.family_id,
                    generation=0,
                    created_at=family.created_at,
                    used=0,
                )
            )

    def family(self, family_id: str) -> FamilyRecord | None:
        f = self.t["families"]
        with self._tx() as conn:
            row = conn.execute(sa.select(f).where(f.c.family_id == family_id)).first()
        return None if row is None else self._family(row)

    def families_of(self, user_id: str) -> list[FamilyRecord]:
        f = self.t["families"]
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(f).where(f.c.user_id == user_id).order_by(f.c.created_at)
            ).all()
        return [self._family(r) for r in rows]

    def family_active(self, family_id: str, now: float) -> bool:
        fam = self.family(family_id)
        return fam is not None and fam.revoked_at is None and now < fam.expires_at

    def revoke_family(self, family_id: str, now: float, reason: str) -> bool:
        f = self.t["families"]
        with self._tx() as conn:
            res = conn.execute(
                f.update()
                .where(f.c.family_id == family_id, f.c.revoked_at.is_(None))
                .values(revoked_at=now, revoke_reason=reason)
            )
            return res.rowcount == 1

    def revoke_user_families(self, user_id: str, now: float, reason: str) -> int:
        f = self.t["families"]
        with self._tx() as conn:
            res = conn.execute(
                f.update()
                .where(f.c.user_id == user_id, f.c.revoked_at.is_(None))
                .values(revoked_at=now, revoke_reason=reason)
            )
            return int(res.rowcount)

    def family_of_token(self, token_hash: str) -> FamilyRecord | None:
        f, tk = self.t["families"], self.t["tokens"]
        with self._tx() as conn:
            row = conn.execute(
                sa.select(f)
                .join(tk, tk.c.family_id == f.c.family_id)
                .where(tk.c.token_hash == token_hash)
            ).first()
        return None if row is None else self._family(row)

    def rotate(
        self, token_hash: str, successor_hash: str, now: float, idle_timeout: float
    ) -> RotationResult:
        """Consume ``token_hash`` exactly once and store ``successor_hash`` in its place.

        One transaction. Reuse of a consumed token revokes the family in the same
        transaction (RFC 9700 §4.14.2). Of N concurrent calls with one token, exactly
        one returns ``ROTATED``; the others find ``used = 1`` and return ``REUSED``.
        """
        f, tk = self.t["families"], self.t["tokens"]
        with self._tx() as conn:
            row = conn.execute(
                sa.select(tk.c.family_id, tk.c.generation, tk.c.used).where(
                    tk.c.token_hash == token_hash
                )
            ).first()
            if row is None:
                return RotationResult(Rotation.UNKNOWN)
            fam_row = conn.execute(sa.select(f).where(f.c.family_id == row.family_id)).first()
            if fam_row is None:  # pragma: no cover - tokens never outlive their family
                return RotationResult(Rotation.UNKNOWN)
            family = self._family(fam_row)
            if family.revoked_at is not None:
                return RotationResult(Rotation.REVOKED, family, int(row.generation))
            if row.used:
                self._revoke_in(conn, family.family_id, now, "reuse_detected")
                return RotationResult(Rotation.REUSED, family, int(row.generation))
            if now >= family.expires_at or now - family.last_used_at >= idle_timeout:
                self._revoke_in(conn, family.family_id, now, "expired")
                return RotationResult(Rotation.EXPIRED, family, int(row.generation))
            consumed = conn.execute(
                tk.update()
                .where(tk.c.token_hash == token_hash, tk.c.used == 0)
                .values(used=1, used_at=now)
            )
            if consumed.rowcount != 1:
                # Lost the race to a concurrent rotation (PostgreSQL re-checked the row
                # after the winner committed): that is reuse too.
                self._revoke_in(conn, family.family_id, now, "reuse_detected")
                return RotationResult(Rotation.REUSED, family, int(row.generation))
            touched = conn.execute(
                f.update()
                .where(f.c.family_id == family.family_id, f.c.revoked_at.is_(None))
                .values(last_used_at=now)
            )
            if touched.rowcount != 1:
                # Revoked (password change, reuse elsewhere) while we were rotating.
                return RotationResult(Rotation.REVOKED, family, int(row.generation))
            conn.execute(
                tk.insert().values(
                    token_hash=successor_hash,
                    family_id=family.family_id,
                    generation=int(row.generation) + 1,
                    created_at=now,
                    used=0,
                )
            )
        return RotationResult(Rotation.ROTATED, family, int(row.generation) + 1)

    def _revoke_in(self, conn: Connection, family_id: str, now: float, reason: str) -> None:
        f = self.t["families"]
        conn.execute(
            f.update()
            .where(f.c.family_id == family_id, f.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        )

    def token_rows(self, family_id: str) -> list[dict[str, Any]]:
        """Rows of a family's tokens (generation, used) for tests and audits."""
        tk = self.t["tokens"]
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(tk.c.generation, tk.c.used, tk.c.created_at)
                .where(tk.c.family_id == family_id)
                .order_by(tk.c.generation)
            ).all()
        return [dict(r._mapping) for r in rows]

    def purge(self, now: float, *, keep_revoked_for: float = 30 * 24 * 3600.0) -> int:
        """Delete families (and their tokens) past their absolute expiry, and revoked
        ones older than ``keep_revoked_for``; return the number of families deleted."""
        f, tk = self.t["families"], self.t["tokens"]
        dead = sa.or_(
            f.c.expires_at <= now,
            sa.and_(f.c.revoked_at.is_not(None), f.c.revoked_at <= now - keep_revoked_for),
        )
        with self._tx() as conn:
            ids = [r.family_id for r in conn.execute(sa.select(f.c.family_id).where(dead))]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(tk.delete().where(tk.c.family_id.in_(chunk)))
                conn.execute(f.delete().where(f.c.family_id.in_(chunk)))
        return len(ids)


_MIGRATIONS: dict[int, Callable[[CredentialStore], None]] = {
    1: CredentialStore._create_v1,
}
