"""Swedish BankID, natively: the Relying Party API v6.0 over mutual TLS.

Facts below come from BankID's Relying Party API v6.0 documentation (https://developers.bankid.com/,
with the OpenAPI file openapi-auth-sign-6.1.9.yaml). Section marks below name its topics:
§1.1 environments and mutual TLS, §1.2 endpoints, §1.3 request fields, §1.4 error
responses, §1.5 collect states and hint codes, §1.6 recommended user messages (RFA),
§1.7 completion data, §1.8 timing, §1.9 animated QR, §1.10 autostart.

* Every call is a JSON ``POST`` to ``<api_url>/<path>`` with the RP client
  certificate, and the server must chain to BankID's issuer CA pinned for the
  environment, never to the system trust store (§1.1, security requirement SEB-01).
* ``begin`` starts an order: ``/auth`` or ``/sign`` (the user is on another device
  and scans an animated QR code, or on this device and the app is launched through
  the autostart link), or ``/phone/auth`` / ``/phone/sign`` when the RP and the user
  are on a phone call (§1.2, §1.3). It answers a :class:`~authbroker.flow.Poll`.
* ``advance`` calls ``/collect`` every 2 s (§1.8); pending states become localized
  messages (RFA codes, :mod:`.bankid_se_messages`), failed states typed errors,
  ``complete`` the :class:`~authbroker.identity.Identity`.
* ``refresh`` recomputes the animated QR payload once a second from the
  ``qrStartSecret`` kept in the server-side flow data; the secret itself never
  reaches a browser (§1.9, SEB-03).
* ``abandon`` calls ``/cancel``; an order still pending when the flow's deadline
  passes is cancelled by the next poll (SEB-05).

Same-device relay (SEB-04, 2024 session-fixation research): an attacker who starts
a flow can forward its autostart link to a victim; if the victim completes the
order, whoever polls the flow would be logged in. The broker already binds each flow
to the browser that began it. On top of that a same-device order carries a
``returnUrl`` (§1.3) holding the flow id and a fresh 256-bit nonce; the nonce is sent
only to BankID (never to the browser), and the app opens that URL in the device's
browser when the user is done. A completed same-device order is *held* until
``advance`` receives that nonce from the browser bound to the flow, so neither the
attacker's polling browser (no nonce) nor the victim's browser (no flow cookie)
gets a session. QR flows expose no autostart link, same-device flows no QR code.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from .. import pki
from ..config import ProviderConfig, Settings, builtin_profiles_dir
from ..config_schema import Option, Schema
from ..errors import (
    AccessDenied,
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
from ..flow import (
    Display,
    Gen,
    Poll,
    fetch,
    store_delete,
    store_get,
    store_incr,
    store_put,
    store_take,
)
from ..http import HttpRequest, HttpResponse, MtlsConfig
from ..identity import Identity, NationalId
from . import bankid_se_messages as msgs
from .base import AdvanceContext, BeginContext, Next, ProviderInfo, require_endpoint

__all__ = [
    "CONFIG_OPTIONS",
    "BankIdSe",
    "autostart_url",
    "escape_simple_markdown",
    "from_config",
    "is_mobile_device",
    "parse_collect",
    "qr_auth_code",
    "qr_payload",
    "qr_svg",
]

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


# --- the adapter --------------------------------------------------------------------


#: Every key a ``bankid-se`` provider table or profile may hold (checked at
#: load_config; declare a new option here when BankIdSe starts reading it).
CONFIG_OPTIONS = Schema(
    "bankid-se",
    "Swedish BankID (RP API v6.0).",
    (
        Option("api_url", "string", None, "RP API base URL, https only (required)"),
        Option(
            "card_reader",
            "string",
            "",
            "requirement.cardReader: class1, class2 or empty (no requirement)",
            choices=("", "class1", "class2"),
        ),
        Option("referring_domain", "string", None, "domain sent in the web object (default: site)"),
        Option("cert_file", "string", None, "RP client certificate (PEM) for mTLS (required)"),
        Option("key_file", "string", None, "RP private key (PEM) if not in cert_file"),
        Option("key_password", "string", None, "password of the RP key", secret=True),
        Option("ca_file", "string", None, "pinned BankID server CA (required)"),
        Option("request_timeout", "number", 10.0, "HTTP timeout in seconds (1..60)"),
        Option("order_timeout", "number", 180.0, "seconds an order may stay open (35..900)"),
        Option("flow_ttl", "number", None, "seconds a flow lives (default: order_timeout + 30)"),
        Option("same_device_return_nonce", "boolean", True, "bind same-device returns by nonce"),
        Option(
            "require_device_ip_match", "boolean", False, "refuse a device IP other than the user's"
        ),
        Option("return_risk", "boolean", False, "ask BankID for the risk indication"),
        Option("block_high_risk", "boolean", True, "refuse orders BankID rates high risk"),
        Option("pin_code", "boolean", False, "require PIN instead of biometrics"),
        Option("certificate_policies", "string list", [], "allowed certificate policy OIDs"),
        Option("order_limit_per_ip", "number", 30, "orders per client IP per window (0: off)"),
        Option("order_limit_per_person", "number", 5, "orders per personal number per window"),
        Option("order_limit_window", "number", 300.0, "rate-limit window in seconds"),
        # authbroker.testing.simulators.bankid_se and the web demo's simulator helpers
        Option("simulator_auto_user", "string", None, "simulator only: personal number that signs"),
        Option("simulator_user", "string", None, "simulator only: user of the demo's scan button"),
    ),
)


class BankIdSe:
    """The ``bankid-se`` protocol: see the module docstring and docs/providers/bankid-se.md."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.name = config.name
        self.loa = config.loa
        self.info = ProviderInfo.from_config(
            config, methods=("bankid",), country="SE", device_choice=True
        )
        # mTLS: never plain http, not even to the simulator.
        self.api_url = require_endpoint(config, "api_url", allow_loopback_http=False).rstrip("/")
        dirs = [builtin_profiles_dir()]
        cert_file = self._file(config, "cert_file", dirs, required=True)
        key_password = config.secret("key_password", required=False)
        if (
            key_password is None
            and config.environment == "test"
            and config.get("cert_file") == TEST_RP_CERT_FILE
        ):
            key_password = TEST_RP_CERT_PASSWORD  # public; BankID's test certificate only
        self.mtls = MtlsConfig(
            cert_file=cert_file,
            key_file=self._file(config, "key_file", dirs, required=False),
            key_password=key_password,
            ca_file=self._file(config, "ca_file", dirs, required=True),
        )
        try:
            # Load once now: a wrong path, key or password is a configuration error,
            # not a failure of the first login.
            self.mtls.ssl_context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"cannot load the RP certificate, key or pinned CA ({type(exc).__name__})",
                key=config.key("cert_file"),
            ) from None
        self.timeout = self._number(config, "request_timeout", 10.0, 1.0, 60.0)
        self.order_timeout = self._number(config, "order_timeout", 180.0, 35.0, 900.0)
        self.flow_ttl = self._number(
            config, "flow_ttl", self.order_timeout + 30.0, self.order_timeout + 5.0, 3600.0
        )
        self.return_nonce = bool(config.get("same_device_return_nonce", True))
        self.require_device_ip_match = bool(config.get("require_device_ip_match", False))
        self.return_risk = bool(config.get("return_risk", False))
        self.block_high_risk = bool(config.get("block_high_risk", True))
        self.pin_code = bool(config.get("pin_code", False))
        policies = config.get("certificate_policies", [])
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise ConfigError(
                "must be a list of OID strings", key=config.key("certificate_policies")
            )
        self.certificate_policies = [str(p) for p in policies]
        card_reader = config.get("card_reader", "")
        if card_reader not in ("", *CARD_READERS):
            raise ConfigError("must be class1, class2 or empty", key=config.key("card_reader"))
        self.card_reader = str(card_reader)
        base_host = urlsplit(settings.base_url).hostname or ""
        self.referring_domain = str(config.get("referring_domain") or base_host)
        if not self.referring_domain or len(self.referring_domain) > MAX_DEVICE_FIELD:
            raise ConfigError("must be the site's domain", key=config.key("referring_domain"))
        # returnUrl is 1-512 characters (BankID: invalidParameters): a callback URL
        # that cannot fit with the flow id and nonce is a start-up error, not a
        # failure of every same-device login.
        self.callback_url = f"{settings.callback_base}/callback/{config.name}"
        if self.return_nonce:
            longest = _return_url(self.callback_url, "f" * 43, "n" * 43)
            if len(longest) > MAX_RETURN_URL:
                raise ConfigError(
                    f"the callback URL is too long for BankID's returnUrl "
                    f"({len(longest)} > {MAX_RETURN_URL} characters with flow id and nonce); "
                    "shorten broker.base_url or broker.route_prefix",
                    key="broker.base_url",
                )
        self.limit_per_ip = int(self._number(config, "order_limit_per_ip", 30, 0, 1e6))
        self.limit_per_person = int(self._number(config, "order_limit_per_person", 5, 0, 1e6))
        self.limit_window = self._number(config, "order_limit_window", 300.0, 1.0, 86400.0)
        key = settings.secret_keys[0] if settings.secret_keys else ""
        self._hash_key = hashlib.sha256(b"authbroker bankid-se index " + key.encode()).digest()

    @staticmethod
    def _file(config: ProviderConfig, key: str, dirs: list[Path], *, required: bool) -> str | None:
        """A file option: absolute, or relative to the shipped profile folder, then
        to the working directory (as certificate sources are, :mod:`..pki`)."""
        value = config.require(key) if required else config.get(key)
        if not value:
            return None
        found = pki.find_file(str(value), dirs)
        return str(found) if found is not None else str(value)

    @staticmethod
    def _number(config: ProviderConfig, key: str, default: float, lo: float, hi: float) -> float:
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(f"must be a number between {lo:g} and {hi:g}", key=config.key(key))
        return float(value)

    def _keyed(self, value: str) -> str:
        """Store keys derived from personal numbers / IPs are keyed hashes, not the values."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()[:40]

    # -- HTTP ----------------------------------------------------------------------

    def _post(self, path: str, body: Mapping[str, Any], *, retries: int = 0) -> Gen[dict[str, Any]]:
        what = path.strip("/")
        attempt = 0
        while True:
            try:
                resp = yield from fetch(
                    HttpRequest.post_json(
                        self.api_url + path,
                        body,
                        mtls=self.mtls,
                        timeout=self.timeout,
                        tag=f"bankid-se {what}",
                    )
                )
            except ProviderUnavailable as exc:
                if _is_cert_failure(exc):
                    raise UntrustedCertificate(
                        "BankID server certificate does not chain to the pinned CA",
                        code="server_untrusted",
                    ) from exc
                raise
            if resp.status == 200:
                return resp.json_object()
            error = api_error(resp, what)
            if attempt < retries and error.code in _RETRYABLE_CODES:
                attempt += 1
                continue
            raise error

    def _cancel_quietly(self, state: Mapping[str, Any]) -> Gen[None]:
        """Best-effort ``/cancel`` while already failing: its own errors are dropped
        (BankID ends the order by itself when it times out)."""
        with contextlib.suppress(AuthBrokerError):
            yield from self._post("/cancel", {"orderRef": state["order_ref"]}, retries=1)
        yield from self._release_person(state)

    def _release_person(self, state: Mapping[str, Any]) -> Gen[None]:
        key = state.get("pn_key")
        if key:
            current = yield from store_get(str(key))
            if current is not None and hmac.compare_digest(
                current, str(state["order_ref"]).encode()
            ):
                yield from store_delete(str(key))

    # -- begin -----------------------------------------------------------------------

    def _end_user_ip(self, client_ip: str | None) -> str:
        # SEB-02: the web layer resolves the real client address (trusted proxies only).
        if not client_ip:
            raise InvalidInput("BankID needs the end user's IP address", code="end_user_ip")
        try:
            return str(ipaddress.ip_address(client_ip.strip()))
        except ValueError:
            raise InvalidInput(
                "the end user's IP address is not valid", code="end_user_ip"
            ) from None

    def _visible_data(self, title: str | None, text: str, limit: int) -> str:
        parts = []
        if title:
            parts.append("# " + escape_simple_markdown(title.replace("\n", " ")))
        parts.append(escape_simple_markdown(text))
        encoded = _b64("\n\n".join(parts))
        if len(encoded) > limit:
            raise InvalidInput("text for the BankID app is too long", code="text_too_long")
        return encoded

    def _order_request(self, ctx: BeginContext) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """``(path, body, state)`` of the order to start, from the flow parameters."""
        params = ctx.params
        action = params.get("action", "auth")
        if action not in ("auth", "sign"):
            raise InvalidInput("action must be auth or sign", code="bad_action")
        same_device = _flag(params.get("same_device"))
        pn: str | None = None
        if params.get("personal_number"):
            pn = NationalId.parse(params["personal_number"], "SE").value
        initiator = params.get("call_initiator")
        body: dict[str, Any]
        if initiator is not None:
            # §1.3: phone orders name the person and who placed the call ("RP" in capitals).
            if initiator not in ("user", "RP"):
                raise InvalidInput("call_initiator must be user or RP", code="call_initiator")
            if pn is None:
                raise InvalidInput(
                    "a phone order needs the personal number", code="personal_number"
                )
            if same_device:
                raise InvalidInput("a phone order cannot autostart", code="bad_mode")
            mode = "phone"
            path = "/phone/sign" if action == "sign" else "/phone/auth"
            body = {"personalNumber": pn, "callInitiator": initiator}
        else:
            mode = "same_device" if same_device else "qr"
            path = "/sign" if action == "sign" else "/auth"
            body = {"endUserIp": self._end_user_ip(ctx.client_ip)}
        requirement: dict[str, Any] = {}
        if self.pin_code:
            requirement["pinCode"] = True
        if self.certificate_policies:
            requirement["certificatePolicies"] = list(self.certificate_policies)
        if mode != "phone":
            if _flag(params.get("mrtd")):
                requirement["mrtd"] = True
            if self.card_reader:
                requirement["cardReader"] = self.card_reader
            if pn is not None:
                requirement["personalNumber"] = pn
            device = self._device_data(params)
            if device is not None:
                body[device[0]] = device[1]
        if requirement:
            body["requirement"] = requirement
        visible_hash = None
        if action == "sign":
            text = params.get("sign_text")
            if not text:
                raise InvalidInput("signing needs the text to sign", code="sign_text")
            body["userVisibleData"] = self._visible_data(
                params.get("sign_title"), text, MAX_SIGN_VISIBLE
            )
            body["userVisibleDataFormat"] = "simpleMarkdownV1"
            visible_hash = hashlib.sha256(body["userVisibleData"].encode()).hexdigest()
            hidden = params.get("sign_data")
            if hidden:
                body["userNonVisibleData"] = _b64(hidden)
                if len(body["userNonVisibleData"]) > MAX_NON_VISIBLE:
                    raise InvalidInput("sign_data is too long", code="text_too_long")
        elif params.get("auth_text"):
            body["userVisibleData"] = self._visible_data(
                params.get("auth_title"), params["auth_text"], MAX_AUTH_VISIBLE
            )
            body["userVisibleDataFormat"] = "simpleMarkdownV1"
        nonce = None
        if mode == "same_device" and self.return_nonce:
            nonce = secrets.token_urlsafe(32)
            body["returnUrl"] = _return_url(ctx.callback_url, ctx.flow_id, nonce)
            if not 1 <= len(body["returnUrl"]) <= MAX_RETURN_URL:
                raise ConfigError(
                    "the callback URL is too long for BankID's returnUrl", key="broker.base_url"
                )
        if self.return_risk and mode != "phone":
            body["returnRisk"] = True
        state: dict[str, Any] = {
            "v": 1,
            "action": action,
            "mode": mode,
            "mobile": is_mobile_device(params.get("device"), params.get("user_agent")),
            "nonce_hash": hashlib.sha256(nonce.encode()).hexdigest() if nonce else None,
            "returned": False,
            "end_user_ip": body.get("endUserIp"),
            "pn_hash": self._keyed("pn:" + pn) if pn else None,
            "pn_key": f"bankid-se:{self.name}:person:{self._keyed('pn:' + pn)}" if pn else None,
            "visible_sha256": visible_hash,
        }
        return path, body, state

    def _device_data(self, params: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
        """The device information BankID asks RPs to send with auth/sign (RP API v6.0):
        ``app`` for orders started from a native app (``app_identifier``,
        ``device_os``, ``device_model``, ``device_id`` params), else ``web`` for a
        browser (``user_agent``, ``device_id``; ``referringDomain`` is the site).
        ``deviceIdentifier`` identifies the device, not the user: the web layer passes
        a keyed hash of the browser's binding cookie. Without it nothing is sent."""
        raw_id = params.get("device_id")
        device_id = _device_field(raw_id, "device_id") if raw_id is not None else ""
        if params.get("app_identifier"):
            return "app", {
                "appIdentifier": _device_field(params.get("app_identifier"), "app_identifier"),
                "deviceOS": _device_field(params.get("device_os"), "device_os"),
                "deviceModelName": _device_field(params.get("device_model"), "device_model"),
                "deviceIdentifier": _device_field(raw_id, "device_id"),
            }
        user_agent = params.get("user_agent")
        if not user_agent or not device_id:
            return None
        return "web", {
            "referringDomain": self.referring_domain,
            "userAgent": "".join(c for c in user_agent if c.isprintable())[:MAX_USER_AGENT],
            "deviceIdentifier": device_id,
        }

    def _rate_limit(self, client_ip: str | None, pn_hash: str | None) -> Gen[None]:
        # SEB-06: order creation pushes to a phone; limit it per IP and per person.
        window = self.limit_window
        if self.limit_per_ip and client_ip:
            key = f"bankid-se:{self.name}:rl:ip:{self._keyed('ip:' + client_ip)}"
            count = yield from store_incr(key, window)
            if count > self.limit_per_ip:
                raise RateLimited(
                    "too many BankID orders from this address",
                    retry_after=window,
                    code="order_rate_ip",
                )
        if self.limit_per_person and pn_hash:
            key = f"bankid-se:{self.name}:rl:pn:{pn_hash}"
            count = yield from store_incr(key, window)
            if count > self.limit_per_person:
                raise RateLimited(
                    "too many BankID orders for this person",
                    retry_after=window,
                    code="order_rate_person",
                )

    def _start(self, path: str, body: Mapping[str, Any], pn_key: str | None) -> Gen[dict[str, Any]]:
        """Start the order; on ``alreadyInProgress`` cancel the conflicting order and retry.

        §1.4: alreadyInProgress means an order for this person exists and no new one
        was created. Only an order *we* started can be cancelled (``/cancel`` needs
        its orderRef, kept under ``pn_key``); then the start is retried once. A
        conflict with an order we do not know (another RP, another session of the
        user) is reported with RFA4 instead of being retried blindly, which would
        push yet another request to the user's phone.
        """
        retried = False
        while True:
            try:
                return (yield from self._post(path, body, retries=1))
            except ProviderError as exc:
                if exc.code != "already_in_progress" or retried or pn_key is None:
                    raise
                previous = yield from store_take(pn_key)
                if previous is None:
                    raise
                retried = True
                # BankID may already have ended it ("cancelled" hint): not an error.
                with contextlib.suppress(ProviderError):
                    yield from self._post("/cancel", {"orderRef": previous.decode()}, retries=1)

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        path, body, state = self._order_request(ctx)
        yield from self._rate_limit(
            body.get("endUserIp") if state["mode"] != "phone" else ctx.client_ip,
            state["pn_hash"],
        )
        answer = yield from self._start(path, body, state["pn_key"])
        order_ref = answer.get("orderRef")
        if not isinstance(order_ref, str) or not _TOKEN_RE.fullmatch(order_ref):
            raise InvalidInput("BankID start answer has no valid orderRef", code="bad_start")
        state["order_ref"] = order_ref
        if state["mode"] != "phone":
            fields = ("autoStartToken", "qrStartToken", "qrStartSecret")
            values = [answer.get(f) for f in fields]
            if not all(isinstance(v, str) and _TOKEN_RE.fullmatch(v) for v in values):
                yield from self._cancel_quietly(state)
                raise InvalidInput("BankID start answer is incomplete", code="bad_start")
            # The QR secret and autostart token live only in the server-side flow data.
            state["autostart_token"], state["qr_token"], state["qr_secret"] = values
        state.update(
            started=ctx.now,
            deadline=ctx.now + self.order_timeout,
            interval=COLLECT_INTERVAL,
            hint="",
            ended=False,
            completion=None,
        )
        if state["pn_key"]:
            yield from store_put(state["pn_key"], order_ref.encode(), self.flow_ttl)
        return Next(Poll(COLLECT_INTERVAL, self._display(state, ctx.now)), state)

    # -- display -----------------------------------------------------------------------

    def _display(self, state: Mapping[str, Any], now: float) -> Display:
        if state.get("completion") is not None:
            return Display(message=dict(msgs.RETURN_TO_BROWSER), status="awaiting_return")
        if now >= float(state["deadline"]):
            return Display(message=msgs.message("RFA8"), status="expired")
        hint = str(state.get("hint") or "")
        autostart = state["mode"] == "same_device"
        rfa = msgs.hint_rfa(
            "pending", hint or "outstandingTransaction", autostart=autostart, mobile=state["mobile"]
        )
        qr = None
        if state["mode"] == "qr" and hint in _SCANNABLE_HINTS:
            qr = qr_payload(
                state["qr_token"], state["qr_secret"], qr_seconds(state["started"], now)
            )
        return Display(
            message=msgs.message(rfa),
            status="pending",
            hint_code=hint,
            qr=qr,
            autostart_url=(
                autostart_url(state["autostart_token"], mobile=bool(state["mobile"]))
                if autostart
                else None
            ),
        )

    def refresh(self, data: Mapping[str, Any], now: float) -> Display:
        """Current display without calling BankID: the QR payload of this second."""
        return self._display(data, now)

    # -- advance -----------------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        state = dict(data)
        try:
            return (yield from self._advance(ctx, state, params))
        except ProviderUnavailable:
            raise  # transient: the broker keeps the flow, the next poll collects again
        except AuthBrokerError:
            # The broker consumes the flow on any other error: end the order with it.
            if not state.get("ended"):
                state["ended"] = True
                yield from self._cancel_quietly(state)
            raise

    def _advance(
        self, ctx: AdvanceContext, state: dict[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        nonce = params.get("nonce")
        if nonce is not None:
            expected = state.get("nonce_hash")
            given = hashlib.sha256(_text_bytes(str(nonce))).hexdigest()
            if not expected or not hmac.compare_digest(given, str(expected)):
                raise InvalidInput("BankID return nonce does not match", code="bad_nonce")
            state["returned"] = True
        completion = state.get("completion")
        if completion is not None:
            if state.get("returned"):
                return self._identity(state, completion)
            return Next(Poll(COLLECT_INTERVAL, self._display(state, ctx.now)), state)
        if ctx.now >= float(state["deadline"]):
            state["ended"] = True
            yield from self._cancel_quietly(state)
            raise Expired(
                "the BankID order took too long", code="order_timeout", details=_details("RFA8")
            )
        try:
            answer = yield from self._post("/collect", {"orderRef": state["order_ref"]})
        except ProviderError as exc:
            if exc.code != "invalid_parameters":
                raise
            # §1.4: collecting an order BankID no longer knows (ended, collected too late).
            state["ended"] = True
            yield from self._release_person(state)
            raise Expired(
                "the BankID order is no longer known", code="order_gone", details=_details("RFA5")
            ) from None
        status, hint, completed = parse_collect(answer, str(state["order_ref"]))
        if status == "pending":
            state["hint"] = hint
            return Next(Poll(COLLECT_INTERVAL, self._display(state, ctx.now)), state)
        state["ended"] = True
        yield from self._release_person(state)
        if status == "failed":
            raise _failure(hint, autostart=state["mode"] == "same_device")
        completed["completedAt"] = ctx.now
        identity = self._identity(state, completed)  # validates before anything is kept
        if state.get("nonce_hash") and not state.get("returned"):
            # SEB-04: hold the result until the browser comes back through returnUrl.
            state["completion"] = completed
            return Next(Poll(COLLECT_INTERVAL, self._display(state, ctx.now)), state)
        return identity

    def _identity(self, state: Mapping[str, Any], completed: Mapping[str, Any]) -> Identity:
        user = completed["user"]
        nid = NationalId.parse(user["personalNumber"], "SE")
        expected = state.get("pn_hash")
        if expected and not hmac.compare_digest(self._keyed("pn:" + nid.value), str(expected)):
            raise InvalidInput("BankID completed for another person", code="person_mismatch")
        device = completed.get("device") or {}
        ip_match: bool | None = None
        if state.get("end_user_ip") and device.get("ipAddress"):
            try:
                ip_match = ipaddress.ip_address(device["ipAddress"]) == ipaddress.ip_address(
                    state["end_user_ip"]
                )
            except ValueError:
                ip_match = False
        if (
            self.require_device_ip_match
            and state.get("mode") == "same_device"
            and ip_match is not True
        ):
            raise AccessDenied(
                "the BankID device is not on the address that began the flow",
                code="device_ip_mismatch",
            )
        if completed.get("risk") == "high" and self.block_high_risk:
            raise AccessDenied("BankID rated the order as high risk", code="risk_high")
        raw = {
            "orderRef": state["order_ref"],
            "action": state["action"],
            "signature": completed["signature"],
            "ocspResponse": completed["ocspResponse"],
            "device": dict(device),
            "device_ip_matches": ip_match,
        }
        for key in ("bankIdIssueDate", "stepUp", "risk"):
            if key in completed:
                raw[key] = completed[key]
        attributes = {"action": str(state["action"])}
        if user.get("name"):
            attributes["name"] = user["name"]
        if completed.get("bankIdIssueDate"):
            attributes["bankid_issue_date"] = completed["bankIdIssueDate"]
        if state.get("visible_sha256"):
            attributes["signed_text_sha256"] = str(state["visible_sha256"])
        return Identity(
            provider=self.name,
            method="bankid",
            subject=nid.value,
            national_id=nid,
            loa=self.loa,
            authenticated_at=datetime.fromtimestamp(float(completed["completedAt"]), UTC),
            given_name=user["givenName"],
            family_name=user["surname"],
            attributes=attributes,
            raw=raw,
        )

    # -- abandon -----------------------------------------------------------------------

    def abandon(self, data: Mapping[str, Any]) -> Gen[None]:
        """Cancel the order of an abandoned flow (errors reach the broker, which ignores them)."""
        if data.get("ended") or data.get("completion") is not None or not data.get("order_ref"):
            return
        yield from self._post("/cancel", {"orderRef": data["order_ref"]}, retries=1)
        yield from self._release_person(data)


def from_config(config: ProviderConfig, settings: Settings) -> BankIdSe:
    """Factory registered for protocol ``bankid-se``."""
    return BankIdSe(config, settings)
