"""Credential rows of the credential store: one mobile login per user."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..errors import InvalidInput
from .database import StoreBase
from .records import CredentialRecord


class CredentialsTable(StoreBase):
    """Reads and writes of the ``credentials`` table."""

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

    @cached_property
    def _by_email_sql(self) -> Any:
        """The lookup of :meth:`credential_by_email`, built once: every login runs it."""
        c = self.t["credentials"]
        return sa.select(c).where(c.c.email == sa.bindparam("email"), c.c.status == "active")

    def credential_by_email(self, email: str) -> CredentialRecord | None:
        """The active credential for a canonical address, or None."""
        with self._one_statement() as conn:
            row = conn.execute(self._by_email_sql, {"email": email}).first()
        return None if row is None else self._credential(row)

    def credential_by_user(self, user_id: str) -> CredentialRecord | None:
        c = self.t["credentials"]
        with self._one_statement() as conn:
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
