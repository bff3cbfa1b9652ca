"""BankID (Sweden) RP API v6 pure helpers: QR codes, launch URLs, answers, errors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import ssl
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode

from ...errors import (
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UntrustedCertificate,
    UserCancelled,
)
from ...http import HttpResponse
from . import messages as msgs

#: Collect pace while pending (§1.8).
COLLECT_INTERVAL: Final = 2.0
#: The app must be started / the QR scanned within about this long, else startFailed (§1.8).
QR_START_WINDOW: Final = 30.0
#: Hint codes during which the QR code is still to be scanned (afterwards it is hidden).
_SCANNABLE_HINTS: Final = frozenset({"", "outstandingTransaction", "noClient"})
#: userVisibleData limits after base64. Auth: 1-1 500 (§1.3, ActiveLogin); sign: the
#: v6 limit is unconfirmed [?], BankID's v5 documentation gave 40 000.
MAX_AUTH_VISIBLE: Final = 1_500
MAX_SIGN_VISIBLE: Final = 40_000
#: userNonVisibleData limit after base64 [?] (v5 documentation: 200 000).
MAX_NON_VISIBLE: Final = 200_000
#: ``returnUrl`` must be 1-512 characters; BankID answers invalidParameters
#: otherwise (OpenAPI spec
#: https://developers.bankid.com/assets/openapi/openapi-auth-sign-6.1.9.yaml).
MAX_RETURN_URL: Final = 512
#: ``web.userAgent`` limit of the RP API (ActiveLogin ``BankIdApiLimits``, from
#: BankID's API documentation); longer user agents are cut, not refused.
MAX_USER_AGENT: Final = 256
#: Bound for the other device-information strings we send (our own limit).
MAX_DEVICE_FIELD: Final = 256
#: ``requirement.cardReader`` values (§1.3).
CARD_READERS: Final = ("class1", "class2")
#: The public password of BankID's test RP certificate FPTestcert5 (published with
#: it on https://developers.bankid.com/getting-started/environments, "qwerty123"); used only in the
#: ``test`` environment for the certificate shipped in providers/bankid-se/.
TEST_RP_CERT_PASSWORD: Final = "qwerty123"  # noqa: S105 - published by BankID
TEST_RP_CERT_FILE: Final = "bankid-se/FPTestcert5_20240610.pem"
#: Start/cancel answered 500 internalError / 503 maintenance "may retry" (§1.4): once.
_RETRYABLE_CODES: Final = frozenset({"internal_error", "maintenance"})
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9-]{1,128}")
_HINT_RE: Final = re.compile(r"[A-Za-z]{1,64}")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_NAME: Final = 256
_MAX_B64: Final = 512 * 1024
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


# --- protocol helpers (pure) ------------------------------------------------------


def qr_auth_code(qr_start_secret: str, seconds: int) -> str:
    """``qrAuthCode``: lowercase hex HMAC-SHA256 keyed with the ASCII ``qrStartSecret``
    over the decimal ASCII seconds since the start response (§1.9)."""
    return hmac.new(
        qr_start_secret.encode("ascii"), str(int(seconds)).encode("ascii"), hashlib.sha256
    ).hexdigest()


def qr_payload(qr_start_token: str, qr_start_secret: str, seconds: int) -> str:
    """The animated QR content ``bankid.<qrStartToken>.<time>.<qrAuthCode>`` (§1.9)."""
    return f"bankid.{qr_start_token}.{int(seconds)}.{qr_auth_code(qr_start_secret, seconds)}"


def qr_seconds(started: float, now: float) -> int:
    """Whole seconds since the order was started (never negative under clock skew)."""
    return max(0, math.floor(now - started))


def qr_svg(payload: str, *, scale: int = 4) -> str:
    """Render a QR payload as inline SVG (needs the ``web`` or ``cli`` extra: segno)."""
    try:
        import segno
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise ConfigError("rendering QR codes needs segno (pip install authbroker[web])") from exc
    return str(segno.make_qr(payload, error="m").svg_inline(scale=scale))


#: Same-device launch (BankID "Mobile BankID on the same device",
#: https://developers.bankid.com/use-cases/mobile-bankid-on-the-same-device): the
#: universal/app link on phones and tablets, the ``bankid:///`` scheme on computers.
MOBILE_LAUNCH_BASE: Final = "https://app.bankid.com/"
DESKTOP_LAUNCH_BASE: Final = "bankid:///"
#: User agents of phones and tablets (Android, iPhone/iPad/iPod, "Mobile" browsers).
_MOBILE_UA_RE: Final = re.compile(r"Android|iPhone|iPad|iPod|Mobile|Windows Phone", re.IGNORECASE)


def autostart_url(auto_start_token: str, *, mobile: bool = False) -> str:
    """Same-device launch link (§1.10): ``https://app.bankid.com/?autostarttoken=…`` on
    mobile devices, ``bankid:///?autostarttoken=…`` on computers. ``redirect=null``:
    the order's ``returnUrl`` (set for same-device orders) decides where the app
    returns."""
    base = MOBILE_LAUNCH_BASE if mobile else DESKTOP_LAUNCH_BASE
    return f"{base}?autostarttoken={quote(auto_start_token, safe='-')}&redirect=null"


def is_mobile_device(device_hint: str | None, user_agent: str | None) -> bool:
    """The device hint from the page (``mobile``/``desktop``) wins; else the user agent."""
    if device_hint in ("mobile", "desktop"):
        return device_hint == "mobile"
    return bool(user_agent and _MOBILE_UA_RE.search(user_agent))


#: Characters with a meaning in simpleMarkdownV1: headings ``#``, bold ``*``,
#: italic ``+``, table cells ``|`` and the escape character ``\\`` itself; a ``-`` at
#: the start of a line can begin a ``---`` rule. BankID escapes them with a
#: backslash. This set is our reading of BankID's "Guidelines for formatted text",
#: not confirmed against a published grammar [?]; see docs/providers/bankid-se.md.
_MARKDOWN_SPECIALS: Final = frozenset("\\#*+|")


def escape_simple_markdown(text: str) -> str:
    """Make ``text`` show literally in the app (SEB-07): simpleMarkdownV1 control
    characters are backslash-escaped, line breaks are normalized to LF and other
    control characters are refused."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    line_start = True
    for ch in text:
        if ch != "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0):
            raise InvalidInput("text for the BankID app has control characters", code="bad_text")
        if ch in _MARKDOWN_SPECIALS or (ch == "-" and line_start):
            out.append("\\")
        out.append(ch)
        line_start = ch == "\n"
    return "".join(out)


def _return_url(callback_url: str, flow_id: str, nonce: str) -> str:
    sep = "&" if "?" in callback_url else "?"
    return callback_url + sep + urlencode({"flow_id": flow_id, "nonce": nonce})


def _device_field(value: str | None, name: str) -> str:
    """One device-information string: present, printable, bounded."""
    if not value or len(value) > MAX_DEVICE_FIELD or not value.isprintable():
        raise InvalidInput(f"BankID device information: bad {name}", code="device_data")
    return value


def _b64(text: str) -> str:
    try:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput(
            "text for the BankID app is not valid Unicode", code="bad_text"
        ) from None


def _flag(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in _TRUE


def _text_bytes(value: str) -> bytes:
    """UTF-8 for strings that came from JSON (lone surrogates must not raise)."""
    return value.encode("utf-8", "surrogatepass")


def _is_cert_failure(exc: BaseException) -> bool:
    """Did the TLS handshake fail because the server certificate is not trusted?"""
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _details(rfa: str, **extra: Any) -> dict[str, Any]:
    return {"rfa": rfa, "message": msgs.message(rfa), **extra}


_KNOWN_ERROR_CODES: Final = frozenset(
    {
        "alreadyInProgress",
        "invalidParameters",
        "unauthorized",
        "notFound",
        "methodNotAllowed",
        "requestTimeout",
        "unsupportedMediaType",
        "tooManyRequests",
        "internalError",
        "maintenance",
    }
)


def api_error(resp: HttpResponse, what: str) -> AuthBrokerError:
    """Map a non-2xx answer (``{"errorCode", "details"}``, §1.4) to a typed error.

    ``details`` text from BankID is never copied (it may echo request data).
    """
    code = ""
    try:
        body = resp.json()
    except InvalidInput:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errorCode"), str):
        code = body["errorCode"] if body["errorCode"] in _KNOWN_ERROR_CODES else "other"
    status = resp.status
    rfa, _ = msgs.error_message(code)
    info = _details(rfa, status=status, error_code=code or None)
    if code == "alreadyInProgress":
        return ProviderError(
            f"BankID {what}: an order is already in progress for this person",
            code="already_in_progress",
            details=info,
        )
    if status == 400 or code == "invalidParameters":
        return ProviderError(
            f"BankID {what}: request refused as invalid", code="invalid_parameters", details=info
        )
    if status in (401, 403) or code == "unauthorized":
        return ProviderError(
            f"BankID {what}: the RP certificate has no access", code="rp_unauthorized", details=info
        )
    if status == 404:
        return ProviderError(f"BankID {what}: no such endpoint", code="not_found", details=info)
    if status == 405:
        return ProviderError(
            f"BankID {what}: method not allowed", code="method_not_allowed", details=info
        )
    if status == 408:
        return ProviderUnavailable(f"BankID {what}: request timeout", code="request_timeout")
    if status == 415:
        return ProviderError(
            f"BankID {what}: unsupported media type", code="unsupported_media_type", details=info
        )
    if status == 429:
        retry_after: float | None = None
        try:
            retry_after = float(resp.headers.get("ratelimit-reset", ""))
        except ValueError:
            retry_after = None
        return RateLimited(
            f"BankID {what}: too many requests",
            retry_after=retry_after,
            code="bankid_rate_limited",
            details=info,
        )
    if status == 503 or code == "maintenance":
        return ProviderUnavailable(
            f"BankID {what}: service in maintenance", code="maintenance", details=info
        )
    if status == 500 or code == "internalError":
        return ProviderUnavailable(
            f"BankID {what}: internal error", code="internal_error", details=info
        )
    if status >= 500:
        return ProviderUnavailable(
            f"BankID {what}: server error", code="server_error", details=info
        )
    return ProviderError(
        f"BankID {what}: unexpected status", code="unexpected_status", details=info
    )


def _str_field(obj: Mapping[str, Any], key: str, *, required: bool, limit: int = _MAX_NAME) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput(f"BankID collect: bad or missing {key}", code="bad_collect")
    return value


def _b64_field(obj: Mapping[str, Any], key: str) -> str:
    value = _str_field(obj, key, required=True, limit=_MAX_B64)
    try:
        base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise InvalidInput(f"BankID collect: {key} is not base64", code="bad_collect") from exc
    return value


def _completion(raw: object) -> dict[str, Any]:
    """Validate ``completionData`` (§1.7) into a JSON-ready dict of known fields."""
    if not isinstance(raw, dict):
        raise InvalidInput("BankID collect: completionData missing", code="bad_collect")
    user = raw.get("user")
    if not isinstance(user, dict):
        raise InvalidInput("BankID collect: completionData.user missing", code="bad_collect")
    pn = _str_field(user, "personalNumber", required=True, limit=12)
    if not (len(pn) == 12 and pn.isascii() and pn.isdigit()):
        raise InvalidInput("BankID collect: personalNumber is not 12 digits", code="bad_collect")
    out: dict[str, Any] = {
        "user": {
            "personalNumber": pn,
            "name": _str_field(user, "name", required=False),
            "givenName": _str_field(user, "givenName", required=True),
            "surname": _str_field(user, "surname", required=True),
        },
        "signature": _b64_field(raw, "signature"),
        "ocspResponse": _b64_field(raw, "ocspResponse"),
    }
    device = raw.get("device")
    if device is not None:
        if not isinstance(device, dict):
            raise InvalidInput("BankID collect: device is not an object", code="bad_collect")
        out["device"] = {
            "ipAddress": _str_field(device, "ipAddress", required=False, limit=64),
            "uhi": _str_field(device, "uhi", required=False, limit=_MAX_NAME),
        }
    issued = raw.get("bankIdIssueDate")
    if issued is not None:
        if not isinstance(issued, str) or not _DATE_RE.fullmatch(issued):
            raise InvalidInput("BankID collect: bad bankIdIssueDate", code="bad_collect")
        out["bankIdIssueDate"] = issued
    step_up = raw.get("stepUp")
    if step_up is not None:
        if not isinstance(step_up, dict) or not isinstance(step_up.get("mrtd", False), bool):
            raise InvalidInput("BankID collect: bad stepUp", code="bad_collect")
        out["stepUp"] = {"mrtd": bool(step_up.get("mrtd", False))}
    risk = raw.get("risk")
    if risk is not None:
        if risk not in ("low", "moderate", "high"):
            raise InvalidInput("BankID collect: bad risk", code="bad_collect")
        out["risk"] = risk
    return out


def parse_collect(answer: Mapping[str, Any], order_ref: str) -> tuple[str, str, dict[str, Any]]:
    """Validate a ``/collect`` answer (§1.5): ``(status, hint_code, completion)``.

    Unknown hint codes are tolerated (they get the generic RFA), malformed ones
    become ``"unknown"``; everything else that does not fit raises InvalidInput.
    """
    status = answer.get("status")
    if status not in ("pending", "failed", "complete"):
        raise InvalidInput("BankID collect: unknown status", code="bad_collect")
    ref = answer.get("orderRef")
    if ref is not None and (
        not isinstance(ref, str)
        or not hmac.compare_digest(_text_bytes(ref), _text_bytes(order_ref))
    ):
        raise InvalidInput("BankID collect: answer is for another order", code="order_mismatch")
    hint = answer.get("hintCode", "")
    if not isinstance(hint, str):
        raise InvalidInput("BankID collect: hintCode is not a string", code="bad_collect")
    if hint and not _HINT_RE.fullmatch(hint):
        hint = "unknown"
    if status == "complete":
        return status, "", _completion(answer.get("completionData"))
    return status, hint, {}


def _failure(hint: str, *, autostart: bool) -> AuthBrokerError:
    """Typed error for a failed order (§1.5); details carry the RFA texts."""
    rfa = msgs.hint_rfa("failed", hint, autostart=autostart)
    info = _details(rfa, hint_code=hint or None)
    if hint == "userCancel":
        return UserCancelled(
            "the user cancelled in the BankID app", code="user_cancel", details=info
        )
    if hint == "cancelled":
        return UserCancelled(
            "the BankID order was superseded by a newer one", code="order_cancelled", details=info
        )
    if hint == "userDeclinedCall":
        return UserCancelled(
            "the user declined the phone call in the BankID app", code="call_declined", details=info
        )
    if hint == "expiredTransaction":
        return Expired("the BankID order expired", code="expired_transaction", details=info)
    if hint == "certificateErr":
        return UntrustedCertificate(
            "the user's BankID is blocked, revoked or invalid", code="certificate_err", details=info
        )
    if hint == "startFailed":
        return ProviderError(
            "the BankID app was not started in time", code="start_failed", details=info
        )
    if hint == "notSupportedByUserApp":
        return ProviderError(
            "the user's BankID app is too old for this order",
            code="app_not_supported",
            details=info,
        )
    if hint == "transactionRiskBlocked":
        return ProviderError(
            "BankID blocked the order as too risky", code="risk_blocked", details=info
        )
    return ProviderError("the BankID order failed", code="order_failed", details=info)
