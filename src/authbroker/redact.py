"""Redaction of protocol messages for debug output (``authbroker flow --verbose``).

Debug output is exactly where secrets leak: authorization codes, client assertions,
ID tokens, TUPAS MACs, one-time codes and identity numbers all travel in the
messages being shown. Everything printed goes through these functions, which keep
the *shape* of a message (field names, lengths) and drop the values that matter.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SECRET_FIELD", "redact_body", "redact_text", "redact_url", "redact_value"]

#: Field names (lower-cased substrings) whose values are never shown.
SECRET_FIELD = re.compile(
    r"code|state|nonce|token|secret|assertion|verifier|password|otp|signature|mac"
    r"|request|custid|ssn|nnin|personal|hetu|pid|session|cookie|authorization|key|ocsp"
    r"|cert|qr|challenge|data",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]*\.[\w-]*(?:\.[\w-]*\.[\w-]*)?")
# Identity numbers of FI/EE/SE/NO and any long digit run (conservative on purpose).
_ID_NUMBERS = re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b|\b\d{10,12}\b", re.IGNORECASE)


def redact_text(text: str) -> str:
    text = _JWT.sub("<jwt>", text)
    return _ID_NUMBERS.sub(lambda m: m.group(0)[:2] + "*" * (len(m.group(0)) - 2), text)


def redact_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: redact_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(key, v) for v in value]
    if SECRET_FIELD.search(key) and value not in (None, "", True, False):
        return f"<{len(str(value))} chars>"
    return redact_text(value) if isinstance(value, str) else value


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode(
        [(k, redact_value(k, v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def redact_body(body: bytes, limit: int = 600) -> str:
    """A one-line, redacted rendering of a JSON or form body."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict | list):
        out = json.dumps(redact_value("", data), ensure_ascii=False)
    elif "=" in text and "\n" not in text and " " not in text:
        out = urlencode([(k, redact_value(k, v)) for k, v in parse_qsl(text)])
    else:
        out = redact_text(text)
    return out if len(out) <= limit else out[:limit] + f"… ({len(out)} chars)"
