"""The BankID (Sweden) adapter: options, orders, collect polling, identities.

Over ~600 lines because the adapter is one class whose steps share its
per-provider state (options, TLS, rate limits); the pure protocol pieces live in
:mod:`.protocol`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...config import ProviderConfig, Settings, builtin_profiles_dir
from ...config_schema import Option, Schema
from ...crypto import pki
from ...errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UntrustedCertificate,
)
from ...flow import Display, Poll, store_delete, store_get, store_incr, store_put, store_take
from ...http import HttpRequest, MtlsConfig
from ...identity import Identity, NationalId
from ...kernel.effects import Gen, fetch
from ..base import AdvanceContext, BeginContext, Next, ProviderInfo, require_endpoint
from . import messages as msgs
from .protocol import (
    _RETRYABLE_CODES,
    _SCANNABLE_HINTS,
    _TOKEN_RE,
    COLLECT_INTERVAL,
    MAX_AUTH_VISIBLE,
    MAX_DEVICE_FIELD,
    MAX_NON_VISIBLE,
    MAX_RETURN_URL,
    MAX_SIGN_VISIBLE,
    MAX_USER_AGENT,
    TEST_RP_CERT_FILE,
    TEST_RP_CERT_PASSWORD,
    _b64,
    _details,
    _device_field,
    _failure,
    _flag,
    _is_cert_failure,
    _return_url,
    _text_bytes,
    api_error,
    autostart_url,
    escape_simple_markdown,
    is_mobile_device,
    parse_collect,
    qr_payload,
    qr_seconds,
)

# --- the adapter --------------------------------------------------------------------


#: Every key a ``bankid-se`` provider table or profile may hold (checked at
#: load_config; declare a new option here when BankIdSe starts reading it).
CONFIG_OPTIONS = Schema(
    "bankid-se",
    "Swedish BankID (RP API v6.0).",
    (
        Option("api_url", "string", None, "RP API base URL, https only", required=True),
        Option(
            "card_reader",
            "string",
            "",
            "requirement.cardReader: class1, class2 or empty (no requirement)",
            choices=("", "class1", "class2"),
        ),
        Option("referring_domain", "string", None, "domain sent in the web object (default: site)"),
        Option("cert_file", "string", None, "RP client certificate (PEM) for mTLS", required=True),
        Option("key_file", "string", None, "RP private key (PEM) if not in cert_file"),
        Option("key_password", "string", None, "password of the RP key", secret=True),
        Option("ca_file", "string", None, "pinned BankID server CA", required=True),
        Option("request_timeout", "number", 10.0, "HTTP timeout in seconds", bounds=(1, 60)),
        Option(
            "order_timeout",
            "number",
            180.0,
            "seconds an order may stay open",
            bounds=(35, 900),
        ),
        Option("flow_ttl", "number", None, "seconds a flow lives (default: order_timeout + 30)"),
        Option("same_device_return_nonce", "boolean", True, "bind same-device returns by nonce"),
        Option(
            "require_device_ip_match", "boolean", False, "refuse a device IP other than the user's"
        ),
        Option("return_risk", "boolean", False, "ask BankID for the risk indication"),
        Option("block_high_risk", "boolean", True, "refuse orders BankID rates high risk"),
        Option("pin_code", "boolean", False, "require PIN instead of biometrics"),
        Option("certificate_policies", "string list", [], "allowed certificate policy OIDs"),
        Option(
            "order_limit_per_ip",
            "number",
            30,
            "orders per client IP per window (0: off)",
            bounds=(0, 1e6),
        ),
        Option(
            "order_limit_per_person",
            "number",
            5,
            "orders per personal number per window",
            bounds=(0, 1e6),
        ),
        Option(
            "order_limit_window", "number", 300.0, "rate-limit window in seconds", bounds=(1, 86400)
        ),
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
        # Types, choices, ranges, required keys and defaults: CONFIG_OPTIONS; the
        # rules between keys are checked below.
        v = CONFIG_OPTIONS.read(config.options, config.key)
        # mTLS: never plain http, not even to the simulator.
        self.api_url = require_endpoint(config, "api_url", allow_loopback_http=False).rstrip("/")
        dirs = [builtin_profiles_dir()]
        cert_file = self._file(v["cert_file"], dirs)
        key_password = config.secret("key_password", required=False)
        if (
            key_password is None
            and config.environment == "test"
            and v["cert_file"] == TEST_RP_CERT_FILE
        ):
            key_password = TEST_RP_CERT_PASSWORD  # public; BankID's test certificate only
        self.mtls = MtlsConfig(
            cert_file=cert_file,
            key_file=self._file(v["key_file"], dirs),
            key_password=key_password,
            ca_file=self._file(v["ca_file"], dirs),
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
        self.timeout: float = v["request_timeout"]
        self.order_timeout: float = v["order_timeout"]
        # The flow outlives the order by at least 5 s, so its last collect is answered.
        flow_ttl = v["flow_ttl"]
        self.flow_ttl: float = self.order_timeout + 30.0 if flow_ttl is None else flow_ttl
        if not self.order_timeout + 5.0 <= self.flow_ttl <= 3600.0:
            raise ConfigError(
                f"must be a number between {self.order_timeout + 5.0:g} and 3600",
                key=config.key("flow_ttl"),
            )
        self.return_nonce: bool = v["same_device_return_nonce"]
        self.require_device_ip_match: bool = v["require_device_ip_match"]
        self.return_risk: bool = v["return_risk"]
        self.block_high_risk: bool = v["block_high_risk"]
        self.pin_code: bool = v["pin_code"]
        self.certificate_policies = list(v["certificate_policies"])
        self.card_reader: str = v["card_reader"]
        base_host = urlsplit(settings.base_url).hostname or ""
        self.referring_domain = str(v["referring_domain"] or base_host)
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
        self.limit_per_ip = int(v["order_limit_per_ip"])
        self.limit_per_person = int(v["order_limit_per_person"])
        self.limit_window: float = v["order_limit_window"]
        key = settings.secret_keys[0] if settings.secret_keys else ""
        self._hash_key = hashlib.sha256(b"authbroker bankid-se index " + key.encode()).digest()

    @staticmethod
    def _file(value: str | None, dirs: list[Path]) -> str | None:
        """A file option: absolute, or relative to the shipped profile folder, then
        to the working directory (as certificate sources are, :mod:`..pki`)."""
        if not value:
            return None
        found = pki.find_file(value, dirs)
        return str(found) if found is not None else value

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
