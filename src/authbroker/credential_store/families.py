"""Refresh-token families of the credential store, and their atomic rotation
(RFC 9700 §4.14.2, https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import StoreBase
from .records import FamilyRecord, Rotation, RotationResult


class FamiliesTable(StoreBase):
    """Families (one per login) and their single-use refresh tokens."""

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
        device row for ``family.device_id`` (one transaction: one commit per login).

        Fail-closed durability: losing this commit in a power failure leaves the app
        with a refresh token that matches nothing, so the user signs in again."""
        with_device = device_name is not None and family.device_id is not None
        params = {
            "device_id": family.device_id,
            "user_id": family.user_id,
            "name": device_name,
            "family_id": family.family_id,
            "client_id": family.client_id,
            "scope": family.scope,
            "created_at": family.created_at,
            "last_used_at": family.last_used_at,
            "expires_at": family.expires_at,
            "token_hash": first_token_hash,
        }
        statements = self._login_inserts(with_device)
        if self.dialect == "postgresql":
            with self._one_statement() as conn:  # autocommit connection
                conn.execute(statements[0], params)
            return
        with self._tx(fail_closed=True) as conn:
            for statement in statements:
                conn.execute(statement, params)

    def _login_inserts(self, with_device: bool) -> tuple[Any, ...]:
        """The inserts of :meth:`create_family` over named parameters, built once per
        store (building them per call was most of a login's SQLAlchemy time)."""
        cache: dict[bool, tuple[Any, ...]] = self.__dict__.setdefault("_login_sql", {})
        if with_device in cache:
            return cache[with_device]
        f, tk, d = self.t["families"], self.t["tokens"], self.t["devices"]

        def bound(table: sa.Table, *columns: str, **renamed: str) -> dict[str, Any]:
            """``column: bindparam`` (the parameter named as the column, or renamed)."""
            names = {c: c for c in columns} | renamed
            return {c: sa.bindparam(p, type_=table.c[c].type) for c, p in names.items()}

        inserts: list[Any] = []
        if with_device:
            device = bound(d, "device_id", "user_id", "name", "created_at")
            inserts.append(d.insert().values(device | bound(d, last_seen_at="created_at")))
        family_cols = "family_id user_id device_id client_id scope created_at last_used_at"
        inserts.append(f.insert().values(bound(f, *family_cols.split(), "expires_at")))
        token: dict[str, Any] = bound(tk, "token_hash", "family_id", "created_at")
        token |= {"generation": 0, "used": 0}
        if self.dialect != "postgresql":
            cache[with_device] = (*inserts, tk.insert().values(token))
            return cache[with_device]
        # One statement (the earlier inserts as data-modifying CTEs) in autocommit:
        # atomic on its own, one round trip instead of BEGIN, three INSERTs and COMMIT
        # (PostgreSQL, "WITH Queries", 7.8.4). The token row is selected from a CTE
        # that sets ``synchronous_commit`` off for this statement's own transaction
        # only (``set_config(..., true)``): the commit does not wait for its WAL
        # flush, the fail-closed counterpart of SQLite's NORMAL (PostgreSQL,
        # "Asynchronous Commit", https://www.postgresql.org/docs/current/wal-async-commit.html).
        fast = sa.select(sa.func.set_config("synchronous_commit", "off", True).label("off")).cte(
            "async_commit"
        )
        row = sa.select(
            *(
                (v if isinstance(v, sa.BindParameter) else sa.literal(v)).label(k)
                for k, v in token.items()
            )
        ).select_from(fast)
        statement = tk.insert().from_select(list(token), row)
        for i, insert in enumerate(inserts):
            statement = statement.add_cte(insert.cte(f"ins{i}"))
        cache[with_device] = (statement,)
        return cache[with_device]

    def family(self, family_id: str) -> FamilyRecord | None:
        f = self.t["families"]
        with self._one_statement() as conn:
            row = conn.execute(sa.select(f).where(f.c.family_id == family_id)).first()
        return None if row is None else self._family(row)

    def families_of(self, user_id: str) -> list[FamilyRecord]:
        f = self.t["families"]
        with self._one_statement() as conn:
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
        with self._one_statement() as conn:
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
