"""Flow records as the broker stores them, and what of them may reach logs and errors.

A record is compact JSON with a version (``"v": 1``); a record that does not decode
is corrupt and refused (``flow_corrupt``), never half-read. The browser binding is
stored only as a SHA-256 hash, flow ids reach logs only as a short prefix, and an
unexpected exception becomes an :class:`~authbroker.errors.InternalError` naming
only its class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import AuthBrokerError, InternalError, InvalidInput
from ..national_ids import mask


def hash_binding(binding: str | None) -> str:
    if not binding:
        return ""
    return hashlib.sha256(binding.encode()).hexdigest()


def typed(exc: Exception) -> AuthBrokerError:
    """``exc`` if it is one of ours, else an :class:`InternalError` naming only its
    class (the message of a foreign exception may carry request data)."""
    if isinstance(exc, AuthBrokerError):
        return exc
    return InternalError("the flow failed unexpectedly", details={"cause": type(exc).__name__})


def cause(exc: AuthBrokerError) -> dict[str, Any]:
    """The class of the unexpected exception behind an :class:`InternalError`."""
    return {"cause": exc.details["cause"]} if isinstance(exc, InternalError) else {}


def short_id(flow_id: str) -> str:
    """Flow ids are bearer-ish values; logs get a prefix, enough to correlate."""
    return mask(flow_id) if len(flow_id) < 12 else flow_id[:8]


def encode_record(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def decode_record(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput("corrupt flow record", code="flow_corrupt") from exc
    if not isinstance(value, dict) or value.get("v") != 1:
        raise InvalidInput("corrupt flow record", code="flow_corrupt")
    return value
