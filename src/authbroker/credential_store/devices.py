"""Device rows of the credential store: app installations that logged in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .database import StoreBase
from .records import DeviceRecord


class DevicesTable(StoreBase):
    """Reads and writes of the ``devices`` table."""

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
