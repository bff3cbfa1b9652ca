"""The Mobiilivarmenne adapter: options, signature request, polling, CMS checks.

Over ~600 lines because the adapter is one class whose steps share its
per-provider state (options, TLS, rate limits); the pure protocol pieces live in
:mod:`.protocol`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ...config import ProviderConfig, Settings, builtin_profiles_dir
from ...config_schema import Option, Schema
from ...crypto import cms
from ...crypto.pki import load_certificate_sources
from ...errors import (
    ConfigError,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UntrustedCertificate,
)
from ...flow import Display, Poll, store_incr
from ...http import HttpRequest, HttpResponse, MtlsConfig
from ...identity import Identity, NationalId
from ...kernel.effects import Gen, fetch
from ..base import (
    AdvanceContext,
    BeginContext,
    Next,
    ProviderInfo,
    certificate_sources,
    require_endpoint,
)
from ..tupas import is_valid_satu
from .protocol import (
    _EVENT_ALPHABET,
    _MESSAGING_MODES,
    _NCNAME,
    _NOSPAM,
    ADDITIONAL_SERVICE,
    MSS_FORMAT_PKCS7,
    PERSON_ID,
    SIGNATURE_PROFILES,
    _code,
    _instant,
    _obj,
    normalize_msisdn,
)
from .status import (
    _MSG_PENDING,
    status_error,
)

#: load_config; declare a new option here when the provider starts reading it).
CONFIG_OPTIONS = Schema(
    "mobiilivarmenne",
    "Finnish Mobile ID (Mobiilivarmenne) through an acquiring entity.",
    (
        Option("endpoint", "string", None, "the acquiring entity's REST endpoint", required=True),
        Option(
            "require_national_id",
            "boolean",
            True,
            "refuse logins whose HETU is not bound to the signer certificate by SATU",
        ),
        Option(
            "require_pinned_tls",
            "boolean",
            None,
            "refuse to start without ca_file (default: true outside the simulator)",
        ),
        Option("ap_id", "string", None, "application provider id URI", required=True),
        Option("ap_password", "string", None, "application provider password", secret=True),
        Option("http_user", "string", None, "HTTP Basic user (default: ap_id)"),
        Option(
            "http_password",
            "string",
            None,
            "HTTP Basic password (default: ap_password)",
            secret=True,
        ),
        Option("signature_profile", "string", "authentication", "signature profile name or URI"),
        Option(
            "messaging_mode",
            "string",
            "asynchClientServer",
            "MSS messaging mode",
            choices=_MESSAGING_MODES,
        ),
        Option(
            "transaction_timeout", "number", 180, "seconds the user has to answer", bounds=(10, 600)
        ),
        Option(
            "first_poll_delay",
            "number",
            20,
            "seconds before the first status query",
            bounds=(0, 120),
        ),
        Option("poll_interval", "number", 5, "seconds between status queries", bounds=(0.1, 60)),
        Option("http_timeout", "number", 15, "HTTP timeout in seconds", bounds=(1, 120)),
        Option("flow_ttl", "number", None, "seconds a flow lives (default: timeout + 60)"),
        Option("person_identity", "boolean", False, "request the person identity service"),
        Option(
            "person_identity_attributes",
            "string list",
            ["hetu", "satu", "givenName", "surName"],
            "person identity attributes requested",
        ),
        Option("key_usage", "string list", None, "key usages the signer certificate must have"),
        Option("strict_der", "boolean", True, "refuse non-DER signatures"),
        Option("default_region", "string", "FI", "region of phone numbers without +"),
        Option("allowed_regions", "string list", ["FI"], "regions whose numbers are accepted"),
        Option(
            "max_requests_per_msisdn",
            "integer",
            3,
            "requests per phone number per window",
            bounds=(1, 1000),
        ),
        Option(
            "max_requests_per_ip",
            "integer",
            30,
            "requests per client IP per window",
            bounds=(1, 100000),
        ),
        Option("rate_window", "number", 300, "rate-limit window in seconds", bounds=(1, 86400)),
        Option(
            "signing_time_skew",
            "number",
            300,
            "seconds the signing time may differ",
            bounds=(0, 3600),
        ),
        Option(
            "trust_anchors",
            "string or string list",
            [],
            "Mobile ID CA certificates",
            required=True,
        ),
        Option("intermediates", "string or string list", [], "extra intermediate certificates"),
        Option("client_cert", "string", None, "mTLS client certificate"),
        Option("client_key", "string", None, "mTLS client key"),
        Option("client_key_password", "string", None, "password of the mTLS key", secret=True),
        Option("ca_file", "string", None, "pinned server CA for mTLS"),
    ),
)


class MobiilivarmenneProvider:
    """Finnish Mobile ID through one acquiring entity's REST endpoint."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.config = config
        self.info = ProviderInfo.from_config(
            config,
            methods=("mobiilivarmenne",),
            country=config.country or "FI",
            needs_input=("phone",),
        )
        self.endpoint = require_endpoint(config, "endpoint")
        v = CONFIG_OPTIONS.read(config.options, config.key)
        # Types, choices, ranges and defaults come from the schema; what stays here are
        # formats of values and the rules between keys.
        self.ap_id: str = v["ap_id"]
        if not 3 <= len(self.ap_id) <= 128:
            raise ConfigError("must be a URI of 3-128 characters", key=config.key("ap_id"))
        self.ap_password = config.secret("ap_password") or ""
        self.http_user: str = v["http_user"] or self.ap_id
        self.http_password = config.secret("http_password", required=False) or self.ap_password
        profile: str = v["signature_profile"]
        self.signature_profile = SIGNATURE_PROFILES.get(profile, profile)
        if self.signature_profile not in SIGNATURE_PROFILES.values():
            raise ConfigError("unknown signature profile", key=config.key("signature_profile"))
        self.mode: str = v["messaging_mode"]
        # MID §3.1: default transaction timeout 5 min; first status query after 20 s,
        # then every 5 s.
        self.timeout: float = v["transaction_timeout"]
        self.first_poll: float = v["first_poll_delay"]
        self.interval: float = v["poll_interval"]
        self.http_timeout: float = v["http_timeout"]
        # The longest call one advance can make; the broker holds the flow lock at
        # least this long, so no poll sends a second request while one still runs.
        # In synchronous mode the signature request blocks until the user answers.
        self.max_call_seconds = (
            self.timeout + self.http_timeout if self.mode == "synch" else self.http_timeout
        )
        self.flow_ttl: float = self.timeout + 60 if v["flow_ttl"] is None else v["flow_ttl"]
        self.person_identity: bool = v["person_identity"]
        # A strong *personal* login needs the HETU, and the HETU is accepted only when
        # the PersonIdentity reply is bound to the verified signer (same SATU): by
        # default a login without such a HETU is refused; applications that key
        # users by SATU (or the certificate) opt out.
        self.require_national_id: bool = v["require_national_id"]
        if self.require_national_id and not self.person_identity:
            raise ConfigError(
                "a personal identity code needs person_identity = true (an AE agreement); "
                "set require_national_id = false to log users in by SATU instead",
                key=config.key("require_national_id"),
            )
        self.person_attributes = [PERSON_ID + a for a in v["person_identity_attributes"]]
        usage: tuple[str, ...] | None = v["key_usage"]
        if usage is None:
            usage = (
                ("digital_signature",)
                if self.signature_profile == SIGNATURE_PROFILES["authentication"]
                else ("non_repudiation",)
            )
        if not set(usage) <= cms.KEY_USAGES:
            raise ConfigError(
                f"must be a list of {sorted(cms.KEY_USAGES)}", key=config.key("key_usage")
            )
        self.key_usage = frozenset(usage)
        self.strict_der: bool = v["strict_der"]
        self.region: str = v["default_region"]
        self.allowed_regions = frozenset(v["allowed_regions"])
        self.max_per_msisdn: int = v["max_requests_per_msisdn"]
        self.max_per_ip: int = v["max_requests_per_ip"]
        self.rate_window: float = v["rate_window"]
        self.signing_skew: float = v["signing_time_skew"]
        sources = certificate_sources(config, "trust_anchors")
        if not sources:
            raise ConfigError(
                "at least one Mobile ID CA certificate is required", key=config.key("trust_anchors")
            )
        base_dirs = [builtin_profiles_dir()]
        self.anchors = load_certificate_sources(
            sources, base_dirs=base_dirs, key=config.key("trust_anchors")
        )
        self.intermediates = load_certificate_sources(
            certificate_sources(config, "intermediates"),
            base_dirs=base_dirs,
            key=config.key("intermediates"),
        )
        cert_file: str | None = v["client_cert"]
        ca_file: str | None = v["ca_file"]
        # The operator's reply carries the HETU outside the signed CMS, so the TLS
        # channel to the AE must be pinned (ca_file replaces the system store; FiCom
        # guideline 2.1: AP-AE mutually authenticated TLS). Required outside the
        # simulator unless explicitly switched off.
        pinned = v["require_pinned_tls"]
        if pinned is None:
            pinned = config.environment != "simulator"
        if pinned and not ca_file:
            raise ConfigError(
                "the AE's TLS CA (PEM) must be pinned (or set require_pinned_tls = false)",
                key=config.key("ca_file"),
            )
        self.mtls: MtlsConfig | None = None
        if cert_file or ca_file:
            self.mtls = MtlsConfig(
                cert_file=cert_file or None,
                key_file=v["client_key"] or None,
                key_password=config.secret("client_key_password", required=False),
                ca_file=ca_file or None,
            )
        token = f"{self.http_user}:{self.http_password}".encode()
        self._auth = "Basic " + base64.b64encode(token).decode()

    # -- messages ------------------------------------------------------------------

    def _post(self, payload: Mapping[str, Any], tag: str, timeout: float) -> HttpRequest:
        return HttpRequest.post_json(
            self.endpoint,
            payload,
            headers={"Authorization": self._auth, "Accept": "application/json"},
            timeout=timeout,
            mtls=self.mtls,
            tag=tag,
        )

    def _ap_info(self, now: float) -> dict[str, str]:
        # AP_TransID: NCName of at most 32 characters, unique per AP (MID §3.2).
        return {
            "AP_ID": self.ap_id,
            "AP_PWD": self.ap_password,
            "AP_TransID": "A" + secrets.token_hex(15),
            "Instant": _instant(now),
        }

    def signature_request(
        self,
        *,
        msisdn: str,
        challenge: bytes,
        event_id: str,
        language: str,
        now: float,
        nospam: str = "",
    ) -> dict[str, Any]:
        """The ``MSS_SignatureReq`` JSON (MID §3.2, §3.4, §3.7)."""
        services: list[dict[str, Any]] = [
            {"Description": ADDITIONAL_SERVICE["event_id"], "EventID": {"Value": event_id}},
            {
                "Description": ADDITIONAL_SERVICE["no_spam"],
                "NoSpamCode": {"Code": nospam, "Verify": "yes"},
            },
            {"Description": ADDITIONAL_SERVICE["user_lang"], "UserLang": {"Value": language}},
        ]
        ap_info = self._ap_info(now)
        if self.person_identity:
            # REST shape of the SAML AttributeQuery (ID = AP_TransID, Version 2.0).
            services.append(
                {
                    "Description": ADDITIONAL_SERVICE["person_identity"],
                    "AttributeQuery": {
                        "ID": ap_info["AP_TransID"],
                        "Version": "2.0",
                        "Attributes": [{"Name": name} for name in self.person_attributes],
                    },
                }
            )
        return {
            "MSS_SignatureReq": {
                "MajorVersion": "1",
                "MinorVersion": "1",
                "MessagingMode": self.mode,
                "TimeOut": str(int(self.timeout)),
                "AP_Info": ap_info,
                "MSSP_Info": {"MSSP_ID": {}},
                "MobileUser": {"MSISDN": msisdn},
                "DataToBeSigned": {
                    "MimeType": "application/octet-stream",
                    "Encoding": "base64",
                    "Data": base64.b64encode(challenge).decode(),
                },
                "SignatureProfile": self.signature_profile,
                "MSS_Format": MSS_FORMAT_PKCS7,
                "AdditionalServices": services,
            }
        }

    def _display(self, event_id: str, status: str = "outstanding") -> Display:
        return Display(
            message={k: v.format(code=event_id) for k, v in _MSG_PENDING.items()},
            status=status,
            verification_code=event_id,
        )

    def refresh(self, data: Mapping[str, Any], now: float) -> Display:
        return self._display(str(data.get("event_id", "")))

    # -- begin ---------------------------------------------------------------------

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        raw = ctx.params.get("msisdn") or ctx.params.get("phone") or ""
        msisdn = normalize_msisdn(raw, region=self.region, allowed_regions=self.allowed_regions)
        nospam = ctx.params.get("nospam", "")
        if nospam and not _NOSPAM.fullmatch(nospam):
            raise InvalidInput("anti-spam code is not valid", code="mid_nospam")
        # MID-01: limit pushes to one phone and from one client.
        digest = hashlib.sha256(msisdn.encode()).hexdigest()[:32]
        count = yield from store_incr(f"mid:rl:n:{digest}", self.rate_window)
        if count > self.max_per_msisdn:
            raise RateLimited(
                "too many Mobile ID requests to this number", retry_after=self.rate_window
            )
        if ctx.client_ip:
            count = yield from store_incr(f"mid:rl:ip:{ctx.client_ip}", self.rate_window)
            if count > self.max_per_ip:
                raise RateLimited("too many Mobile ID requests", retry_after=self.rate_window)
        # MID-02: a fresh 256-bit challenge per flow; shown to nobody.
        challenge = secrets.token_bytes(32)
        event_id = "".join(secrets.choice(_EVENT_ALPHABET) for _ in range(4))
        language = (
            ctx.language[:2].lower() if ctx.language[:2].lower() in ("fi", "sv", "en") else "fi"
        )
        data: dict[str, Any] = {
            "msisdn": msisdn,
            "challenge": base64.b64encode(challenge).decode(),
            "event_id": event_id,
            "language": language,
            "nospam": nospam,
            "started": ctx.now,
            "deadline": ctx.now + self.timeout + 30,
            "interval": self.interval,
        }
        if self.mode == "synch":
            # The synchronous request blocks until the user answers: send it from the
            # first advance, after the browser has shown the event id.
            data.update(sent=False, next_poll=ctx.now)
            return Next(Poll(0.0, self._display(event_id)), data)
        request = self.signature_request(
            msisdn=msisdn,
            challenge=challenge,
            event_id=event_id,
            language=language,
            now=ctx.now,
            nospam=nospam,
        )
        resp = yield from fetch(self._post(request, "mss_signature", self.http_timeout))
        body = self._parse(resp, "MSS_SignatureResp")
        self._check_echo(body, request["MSS_SignatureReq"], msisdn)
        status, specifier = self._status(body)
        if status != 100:
            raise status_error(status, specifier)
        transid = body.get("MSSP_TransID")
        if not isinstance(transid, str) or not _NCNAME.fullmatch(transid):
            raise InvalidInput("MSSP response: bad MSSP_TransID", code="mid_response")
        data.update(sent=True, transid=transid, next_poll=ctx.now + self.first_poll)
        return Next(Poll(self.first_poll, self._display(event_id)), data)

    # -- advance -------------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        state = dict(data)
        event_id = str(state["event_id"])
        if ctx.now > float(state["deadline"]):
            raise status_error(208)
        if ctx.now < float(state["next_poll"]):
            # Polled faster than the binding allows: answer without asking the MSSP.
            wait = float(state["next_poll"]) - ctx.now
            return Next(Poll(wait, self._display(event_id)), state)
        challenge = base64.b64decode(state["challenge"])
        if not state.get("sent"):
            request = self.signature_request(
                msisdn=state["msisdn"],
                challenge=challenge,
                event_id=event_id,
                language=state["language"],
                now=ctx.now,
                nospam=state.get("nospam", ""),
            )
            resp = yield from fetch(self._post(request, "mss_signature", self.max_call_seconds))
            body = self._parse(resp, "MSS_SignatureResp")
            self._check_echo(body, request["MSS_SignatureReq"], state["msisdn"])
        else:
            request = {
                "MSS_StatusReq": {
                    "MajorVersion": "1",
                    "MinorVersion": "1",
                    "AP_Info": self._ap_info(ctx.now),
                    "MSSP_Info": {"MSSP_ID": {}},
                    "MSSP_TransID": state["transid"],
                }
            }
            resp = yield from fetch(self._post(request, "mss_status", self.http_timeout))
            body = self._parse(resp, "MSS_StatusResp")
            if "MSSP_TransID" in body and not (
                isinstance(body["MSSP_TransID"], str)
                and hmac.compare_digest(body["MSSP_TransID"], str(state["transid"]))
            ):
                raise InvalidInput("MSSP response for another transaction", code="mid_response")
        status, specifier = self._status(body)
        if status in (100, 504):
            if not state.get("sent"):
                raise InvalidInput(
                    "MSSP answered a synchronous request as pending", code="mid_response"
                )
            state["next_poll"] = ctx.now + self.interval
            return Next(Poll(self.interval, self._display(event_id)), state)
        if status not in (500, 502):
            raise status_error(status, specifier)
        return self._identity(body, state, challenge, ctx.now)

    # -- responses -----------------------------------------------------------------

    def _parse(self, resp: HttpResponse, expected: str) -> dict[str, Any]:
        if resp.status in (401, 403):
            raise ProviderError("MSSP refused our credentials", code="mid_auth")
        if resp.status >= 500 and resp.content_type != "application/json":
            raise ProviderUnavailable("MSSP failed", code="mid_http")
        if resp.status >= 400 and resp.content_type != "application/json":
            raise ProviderError("MSSP refused the request", code="mid_http")
        payload = resp.json_object()
        if "Fault" in payload:
            code, specifier = self._fault(payload["Fault"])
            raise status_error(code, specifier)
        if resp.status != 200:
            raise ProviderError("MSSP refused the request", code="mid_http")
        return _obj(payload.get(expected), expected)

    @staticmethod
    def _fault(fault: Any) -> tuple[int, int | None]:
        """``Fault.Code.SubCode.Value`` = ``fi:_401``, nested SubCode = ``fi:4011`` (MID §3.6)."""
        fault = _obj(fault, "Fault")
        code_obj = fault.get("Code")
        codes: list[int] = []
        for _ in range(4):
            if not isinstance(code_obj, dict):
                break
            sub = code_obj.get("SubCode")
            if not isinstance(sub, dict):
                break
            value = _code(sub.get("Value"))
            if value is not None:
                codes.append(value)
            code_obj = sub
        if not codes:
            return 900, None  # the binding's default when the fault names no code
        specifier = codes[1] if len(codes) > 1 and codes[1] >= 1000 else None
        return codes[0], specifier

    @staticmethod
    def _status(body: Mapping[str, Any]) -> tuple[int, int | None]:
        status = _obj(body.get("Status"), "Status")
        code = _code(_obj(status.get("StatusCode"), "StatusCode").get("Value"))
        if code is None:
            raise InvalidInput("MSSP response: bad status code", code="mid_response")
        return code, None

    @staticmethod
    def _check_echo(body: Mapping[str, Any], request: Mapping[str, Any], msisdn: str) -> None:
        """The response must answer *our* request (AP_TransID, MSISDN echoes, MID §3.5)."""
        ap_info = body.get("AP_Info")
        if isinstance(ap_info, dict) and "AP_TransID" in ap_info:
            got = ap_info["AP_TransID"]
            if not isinstance(got, str) or not hmac.compare_digest(
                got, request["AP_Info"]["AP_TransID"]
            ):
                raise InvalidInput("MSSP response for another request", code="mid_response")
        user = body.get("MobileUser")
        if isinstance(user, dict) and "MSISDN" in user:
            got = user["MSISDN"]
            if not isinstance(got, str) or not hmac.compare_digest(got, msisdn):
                raise InvalidInput("MSSP response for another user", code="mid_response")

    def _identity(
        self, body: Mapping[str, Any], state: Mapping[str, Any], challenge: bytes, now: float
    ) -> Identity:
        sig = _obj(body.get("MSS_Signature"), "MSS_Signature").get("Base64Signature")
        if not isinstance(sig, str) or len(sig) > cms.MAX_CMS_BYTES * 2:
            raise InvalidInput("MSSP response: signature missing", code="mid_response")
        try:
            der = base64.b64decode(sig.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise InvalidInput("MSSP response: signature not base64", code="mid_response") from exc
        result = cms.verify_signed_data(der, challenge, strict_der=self.strict_der)
        at = datetime.fromtimestamp(now, UTC)
        signer = result.signer
        others = [c for c in result.certificates if c != signer]
        cms.verify_signer_certificate(
            signer, [*others, *self.intermediates], self.anchors, at=at, key_usage=self.key_usage
        )
        if result.signing_time is not None:
            signed_at = result.signing_time.timestamp()
            if (
                not float(state["started"]) - self.signing_skew
                <= signed_at
                <= now + self.signing_skew
            ):
                raise InvalidSignature(
                    "signing time outside the transaction", code="mid_signing_time"
                )
            if not signer.not_valid_before_utc <= result.signing_time <= signer.not_valid_after_utc:
                raise UntrustedCertificate(
                    "certificate not valid at signing time", code="cert_expired"
                )
        return self._build_identity(signer, body, state, at)

    def _build_identity(
        self,
        cert: x509.Certificate,
        body: Mapping[str, Any],
        state: Mapping[str, Any],
        at: datetime,
    ) -> Identity:
        def name_attr(oid: x509.ObjectIdentifier) -> str | None:
            values = cert.subject.get_attributes_for_oid(oid)
            return str(values[0].value) if values else None

        attributes: dict[str, str] = {}
        serial = name_attr(NameOID.SERIAL_NUMBER) or ""
        # DVV-style subjects carry SATU in serialNumber (MID §3.5; Web eID 4b.8).
        satu_match = re.search(r"([0-9]{8}[0-9A-Y])$", serial.upper())
        satu = satu_match.group(1) if satu_match and is_valid_satu(satu_match.group(1)) else None
        if satu:
            attributes["satu"] = satu
        given = name_attr(NameOID.GIVEN_NAME)
        family = name_attr(NameOID.SURNAME)
        common = name_attr(NameOID.COMMON_NAME)
        if common:
            attributes["common_name"] = common
        national_id: NationalId | None = None
        person = self._person_identity(body)
        if person and self._person_bound(person, satu):
            if "hetu" in person:
                national_id = NationalId.parse(person["hetu"], "FI")
            given = given or person.get("givenName")
            family = family or person.get("surName")
        if national_id is None and self.require_national_id:
            raise InvalidInput(
                "no personal identity code bound to the signer's certificate",
                code="mid_person_unbound",
            )
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        subject = satu or (national_id.value if national_id else "cert:" + fingerprint)
        transid = str(state.get("transid", ""))
        return Identity(
            provider=self.info.name,
            method="mobiilivarmenne",
            subject=subject,
            national_id=national_id,
            loa=self.info.loa,
            authenticated_at=at,
            given_name=given,
            family_name=family,
            phone=str(state["msisdn"]),
            attributes=attributes,
            raw={
                "mssp_transid": transid,
                "certificate_fingerprint": fingerprint,
                "certificate_issuer": cert.issuer.rfc4514_string(),
                "signature_profile": self.signature_profile,
            },
        )

    @staticmethod
    def _person_bound(person: Mapping[str, str], cert_satu: str | None) -> bool:
        """Whether a PersonIdentity reply speaks of the person who signed.

        The reply is not covered by the CMS signature we verify, so on its own a
        hostile or intercepted reply could name anyone. It is bound to the signer
        only when its SATU equals the SATU in the verified certificate's
        ``serialNumber``: no SATU in the reply (``#partialFailure`` or omitted), or
        a certificate without SATU, binds nothing; a different SATU is a forgery.
        """
        reply_satu = person.get("satu", "").upper()
        if not reply_satu or not cert_satu:
            return False
        if not hmac.compare_digest(reply_satu.encode(), cert_satu.encode()):
            raise InvalidInput("PersonIdentity does not match the certificate", code="mid_person")
        return True

    @staticmethod
    def _person_identity(body: Mapping[str, Any]) -> dict[str, str]:
        """Attributes of an ``…#personIdentity`` service response with status ``#ok``."""
        out: dict[str, str] = {}
        responses = body.get("ServiceResponses")
        if not isinstance(responses, list):
            return out
        for entry in responses[:8]:
            if not isinstance(entry, dict):
                continue
            if entry.get("Description") != ADDITIONAL_SERVICE["person_identity"]:
                continue
            status = entry.get("Status")
            value = None
            if isinstance(status, dict) and isinstance(status.get("StatusCode"), dict):
                value = status["StatusCode"].get("Value")
            if value not in (PERSON_ID + "ok", PERSON_ID + "partialFailure"):
                continue
            attributes = entry.get("Attributes")
            if not isinstance(attributes, list):
                continue
            for attr in attributes[:32]:
                if not isinstance(attr, dict):
                    continue
                name, val = attr.get("Name"), attr.get("Value")
                if (
                    isinstance(name, str)
                    and name.startswith(PERSON_ID)
                    and isinstance(val, str)
                    and 0 < len(val) <= 128
                ):
                    out[name[len(PERSON_ID) :]] = val
        return out


def from_config(config: ProviderConfig, settings: Settings) -> MobiilivarmenneProvider:
    """Registry entry point for protocol ``mobiilivarmenne``."""
    return MobiilivarmenneProvider(config, settings)
