"""The TUPAS adapter: options, the signed authentication request and its response."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stdnum.fi import ytunnus

from ...config import ProviderConfig, Settings
from ...config_schema import Option, Schema
from ...errors import (
    AccessDenied,
    AlreadyUsed,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    UserCancelled,
)
from ...flow import AutoPost, store_put_if_absent
from ...identity import Identity, NationalId, SubjectType
from ...kernel.effects import Gen
from ..base import RAW_QUERY, AdvanceContext, BeginContext, Next, ProviderInfo, require_endpoint
from .mac import (
    _ALL_RESPONSE_FIELDS,
    _DIGITS,
    _HEX,
    _MAC_LENGTH,
    _MAX_LENGTH,
    _SECRET_KEY,
    ALGORITHMS,
    LEGACY_ALGORITHMS,
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    RESPONSE_OPTIONAL_FIELDS,
    RESULT_PARAM,
    _add_query,
    compute_mac,
    is_valid_satu,
    response_mac_values,
)

log = logging.getLogger(__name__)


#: Every key a ``tupas`` provider table or profile may hold (checked at load_config;
#: declare a new option here when TupasProvider starts reading it).
CONFIG_OPTIONS = Schema(
    "tupas",
    "TUPAS bank identification (one profile per bank).",
    (
        Option("url", "string", None, "the bank's TUPAS service URL", required=True),
        Option("bank_number", "string or integer", None, "three-digit bank number", required=True),
        Option("rcvid", "string", None, "service provider id (1-15 characters)", required=True),
        Option("version", "string or integer", "0002", "A01Y_VERS message version"),
        Option("response_versions", "list", None, "accepted response versions (default: version)"),
        Option("key_version", "string or integer", "0001", "key version of the MAC secret"),
        Option("id_type", "string or integer", "02", "A01Y_IDTYPE (two digits)"),
        Option(
            "algorithm",
            "string",
            "03",
            "MAC algorithm: 01 MD5, 02 SHA-1, 03 SHA-256",
            choices=tuple(sorted(ALGORITHMS)),
        ),
        Option("allow_legacy_algorithms", "boolean", False, "accept MD5/SHA-1 MACs"),
        Option("charset", "string", "iso-8859-1", "character set of the bank's messages"),
        Option(
            "allow_organization_identities",
            "boolean",
            False,
            "admit company logins (CUSTTYPE 03) as organization identities",
        ),
        Option(
            "max_response_age",
            "number",
            300,
            "seconds a response stays valid, more than 0",
            bounds=(0, 3600),
        ),
        Option("clock_skew", "number", 60, "seconds of clock skew allowed", bounds=(0, 300)),
        Option("timestamp_timezone", "string", "Europe/Helsinki", "time zone of bank time stamps"),
        Option(
            "flow_ttl",
            "number",
            None,
            "seconds a flow lives (default: broker.flow_ttl)",
            bounds=(1, None),
        ),
        Option(
            "name_order",
            "string",
            "family_first",
            "how B02K_CUSTNAME is split (none keeps only the full name)",
            choices=("family_first", "none"),
        ),
        Option(
            "secret_v<N>",
            "string",
            None,
            "MAC secret of key version N (secret_v<N>_env names the variable)",
            secret=True,
            pattern=r"secret_v[0-9]{1,4}",
        ),
    ),
)


class TupasProvider:
    """One bank's TUPAS service (one profile per bank: ``providers/tupas-*.toml``)."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.config = config
        self.info = ProviderInfo.from_config(
            config, methods=("tupas",), country=config.country or "FI"
        )
        self.url = require_endpoint(
            config, "url", message="must be an https URL (http only to loopback in the simulator)"
        )
        v = CONFIG_OPTIONS.read(config.options, config.key)
        # Types, choices, ranges and defaults come from the schema; the formats of
        # values and the rules between keys (TUPAS specification v2.3c §3) stay here.
        self.bank_number = str(v["bank_number"])
        if not (len(self.bank_number) == 3 and self.bank_number.isdigit()):
            raise ConfigError("must be the three-digit bank number", key=config.key("bank_number"))
        self.rcvid: str = v["rcvid"]
        if not 1 <= len(self.rcvid) <= 15 or not self.rcvid.isprintable():
            raise ConfigError("must be 1-15 printable characters", key=config.key("rcvid"))
        self.version, self.key_version = (
            self._four_digits(v[key], config.key(key)) for key in ("version", "key_version")
        )
        self.accepted_versions = frozenset(
            self._four_digits(item, config.key("response_versions"))
            for item in v["response_versions"] or (self.version,)
        )
        self.id_type = str(v["id_type"])
        if not (len(self.id_type) == 2 and self.id_type.isdigit()):
            raise ConfigError("must be two digits", key=config.key("id_type"))
        self.allow_legacy: bool = v["allow_legacy_algorithms"]
        self.algorithm: str = v["algorithm"]
        if self.algorithm in LEGACY_ALGORITHMS and not self.allow_legacy:
            raise ConfigError(
                "MD5/SHA-1 need allow_legacy_algorithms = true in the bank profile",
                key=config.key("algorithm"),
            )
        if self.allow_legacy:
            # TUP-02: the legacy choice is visible at startup.
            log.warning("TUPAS provider %s accepts legacy MAC algorithms (MD5/SHA-1)", config.name)
        self.charset: str = v["charset"]
        try:
            "".encode(self.charset)
        except LookupError:
            raise ConfigError("unknown character set", key=config.key("charset")) from None
        self.max_age: float = v["max_response_age"]
        if self.max_age == 0:
            raise ConfigError("must be more than 0", key=config.key("max_response_age"))
        self.skew: float = v["clock_skew"]
        try:
            self.tz = ZoneInfo(v["timestamp_timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                "unknown time zone (is tzdata installed?)", key=config.key("timestamp_timezone")
            ) from None
        self.flow_ttl: float = settings.flow_ttl if v["flow_ttl"] is None else v["flow_ttl"]
        self.name_order: str = v["name_order"]
        # CUSTTYPE 03 identifies a company (Y-tunnus) and no person (TUPAS §1.5): a
        # strong *personal* login cannot be made of it, so it is refused unless the
        # application opts in, and then the identity is typed as an organization.
        self.allow_organizations: bool = v["allow_organization_identities"]
        self.secrets = self._load_secrets(config)
        if self.key_version not in self.secrets:
            raise ConfigError(
                f"no secret for key version {self.key_version}",
                key=config.key(f"secret_v{int(self.key_version)}_env"),
            )

    @staticmethod
    def _four_digits(value: object, key: str) -> str:
        """A message or key version: at most four digits, zero-padded (``2`` -> ``0002``)."""
        text = str(value)
        if isinstance(value, bool) or not (text.isdigit() and len(text) <= 4):
            raise ConfigError("must be a number of at most four digits", key=key)
        return text.zfill(4)

    @staticmethod
    def _load_secrets(config: ProviderConfig) -> dict[str, str]:
        """``secret_v<N>_env`` (or a literal ``secret_v<N>`` in the simulator) per key version."""
        found: dict[str, str] = {}
        for key in config.options:
            match = _SECRET_KEY.fullmatch(key)
            if match is None:
                continue
            number = int(match.group(1))
            secret = config.secret(f"secret_v{number}")
            if not secret:
                raise ConfigError("is empty", key=config.key(key))
            found[f"{number:04d}"] = secret
        return found

    # -- begin -------------------------------------------------------------------

    def _local(self, when: float) -> datetime:
        return datetime.fromtimestamp(when, UTC).astimezone(self.tz)

    def request_fields(self, *, stamp: str, language: str, callback_url: str) -> dict[str, str]:
        """The ``A01Y_*`` form in MAC order, MAC included (TUPAS §1.2-1.3)."""
        links = {
            "A01Y_RETLINK": _add_query(callback_url, **{RESULT_PARAM: "ok"}),
            "A01Y_CANLINK": _add_query(callback_url, **{RESULT_PARAM: "cancel"}),
            "A01Y_REJLINK": _add_query(callback_url, **{RESULT_PARAM: "reject"}),
        }
        for name, link in links.items():
            if len(link) > 199:
                raise ConfigError(f"{name} would exceed 199 characters", key="broker.base_url")
        lang = language[:2].upper()
        fields = {
            "A01Y_ACTION_ID": "701",
            "A01Y_VERS": self.version,
            "A01Y_RCVID": self.rcvid,
            "A01Y_LANGCODE": lang if lang in ("FI", "SV", "EN") else "FI",
            "A01Y_STAMP": stamp,
            "A01Y_IDTYPE": self.id_type,
            **links,
            "A01Y_KEYVERS": self.key_version,
            "A01Y_ALG": self.algorithm,
        }
        values = [fields[name] for name in REQUEST_FIELDS]
        fields["A01Y_MAC"] = compute_mac(
            values, self.secrets[self.key_version], self.algorithm, charset=self.charset
        )
        return fields

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        prefix = self._local(ctx.now).strftime("%Y%m%d%H%M%S")
        for _ in range(8):
            # yyyymmddhhmmss + 6 random digits (TUPAS §1.2); reserved in the store so
            # it is unique across broker instances for as long as a flow can live.
            stamp = f"{prefix}{secrets.randbelow(10**6):06d}"
            fresh = yield from store_put_if_absent(
                f"tupas:issued:{self.bank_number}:{stamp}", b"1", self.flow_ttl + self.max_age
            )
            if fresh:
                break
        else:
            raise ProviderError("could not allocate a unique TUPAS stamp", code="tupas_stamp")
        fields = self.request_fields(
            stamp=stamp, language=ctx.language, callback_url=ctx.callback_url
        )
        # The algorithm is part of the flow: the response must use the same one
        # (no downgrade to a legacy algorithm the profile merely tolerates).
        data = {
            "stamp": stamp,
            "issued": ctx.now,
            "bank": self.bank_number,
            "alg": fields["A01Y_ALG"],
        }
        return Next(AutoPost(url=self.url, fields=fields), data)

    # -- advance -----------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        params = self._decode_params(params)
        result = params.get(RESULT_PARAM)
        if result == "cancel":
            raise UserCancelled("user cancelled at the bank", code="tupas_cancel")
        if result == "reject":
            raise ProviderError("the bank rejected the identification", code="tupas_reject")
        if result not in (None, "ok"):
            raise InvalidInput("unknown TUPAS return link", code="tupas_result")
        fields = self._check_fields(params)
        self._verify_mac(fields, str(data.get("alg", self.algorithm)))
        stamp = str(data.get("stamp", ""))
        if not stamp or not hmac.compare_digest(fields["B02K_STAMP"].encode(), stamp.encode()):
            raise InvalidInput("TUPAS stamp does not belong to this flow", code="tupas_stamp")
        if fields["B02K_TIMESTMP"][:3] != self.bank_number:
            raise InvalidInput("TUPAS response from another bank", code="tupas_bank")
        issued_at = self._check_time(fields["B02K_TIMESTMP"], ctx.now, float(data["issued"]))
        # Identity rules (identifier type, checksums) before the stamp is consumed, so
        # a refused response changes no state.
        identity = self._identity(fields, issued_at)
        fresh = yield from store_put_if_absent(
            f"tupas:stamp:{self.bank_number}:{stamp}", b"1", self.flow_ttl + self.max_age
        )
        if not fresh:
            raise AlreadyUsed("TUPAS response was already used", code="tupas_replay")
        return identity

    def _decode_params(self, params: Mapping[str, str]) -> dict[str, str]:
        """Callback parameters with the query decoded in the bank's character set.

        Banks percent-encode the ``B02K_*`` values in their charset, ISO-8859-1 by
        the TUPAS service description (``charset`` in the profile), and the MAC is
        over those bytes (TUPAS §1.3). The web layer's UTF-8 decoding cannot read
        ``M%C4KI``, so the raw query string (:data:`RAW_QUERY`) is decoded here;
        a form-posted response (Danske Bank posts) arrives as form fields instead.
        """
        out = {k: v for k, v in params.items() if k != RAW_QUERY}
        raw = params.get(RAW_QUERY)
        if raw is None:
            return out
        if len(raw) > 8192 or not raw.isascii():
            raise InvalidInput("malformed TUPAS return query", code="tupas_query")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, encoding=self.charset, errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("TUPAS return query not in the bank charset") from exc
        seen: set[str] = set()
        for name, value in pairs:
            if name in seen:
                raise InvalidInput("a parameter appears twice", code="duplicate_parameter")
            seen.add(name)
            out[name] = value
        return out

    def _check_fields(self, params: Mapping[str, str]) -> dict[str, str]:
        """Presence, shape and length of every field (TUP-04); nothing else accepted."""
        extra = [
            k for k in params if k.upper().startswith("B02K_") and k not in _ALL_RESPONSE_FIELDS
        ]
        if extra:
            raise InvalidInput("unexpected TUPAS response field", code="tupas_fields")
        fields: dict[str, str] = {}
        for name in (*RESPONSE_FIELDS, "B02K_MAC", *RESPONSE_OPTIONAL_FIELDS):
            value = params.get(name)
            if value is None:
                if name in RESPONSE_OPTIONAL_FIELDS:
                    continue
                raise InvalidInput("TUPAS response field missing", code="tupas_fields")
            if not isinstance(value, str) or len(value) > _MAX_LENGTH[name]:
                raise InvalidInput("TUPAS response field too long", code="tupas_fields")
            if not value.isprintable():
                raise InvalidInput("TUPAS response field has control characters")
            if not value and name not in RESPONSE_OPTIONAL_FIELDS:
                raise InvalidInput("TUPAS response field empty", code="tupas_fields")
            fields[name] = value
        for name, length in (
            ("B02K_VERS", 4),
            ("B02K_TIMESTMP", 23),
            ("B02K_STAMP", 20),
            ("B02K_KEYVERS", 4),
            ("B02K_ALG", 2),
            ("B02K_CUSTTYPE", 2),
        ):
            if len(fields[name]) != length or not _DIGITS.fullmatch(fields[name]):
                raise InvalidInput("malformed TUPAS response field", code="tupas_fields")
        return fields

    def _verify_mac(self, fields: Mapping[str, str], request_alg: str) -> None:
        """TUP-01/02: version, algorithm policy, key version, then the MAC itself.

        ``B02K_ALG`` must equal the ``A01Y_ALG`` of our request: a bank answers with
        the algorithm it was asked for (TUPAS §1.3-1.4), and accepting any allowed
        algorithm would let a forger of an MD5 MAC answer a SHA-256 request whenever
        the profile tolerates legacy algorithms for old key generations.
        """
        if fields["B02K_VERS"] not in self.accepted_versions:
            raise InvalidInput("unexpected TUPAS version", code="tupas_version")
        alg = fields["B02K_ALG"]
        if alg not in ALGORITHMS:
            raise InvalidInput("unknown TUPAS MAC algorithm", code="tupas_alg")
        if alg in LEGACY_ALGORITHMS and not self.allow_legacy:
            raise InvalidSignature("legacy TUPAS MAC algorithm refused", code="tupas_legacy_alg")
        if not hmac.compare_digest(alg.encode(), request_alg.encode()):
            raise InvalidSignature(
                "TUPAS response algorithm differs from the request's", code="tupas_alg_mismatch"
            )
        secret = self.secrets.get(fields["B02K_KEYVERS"])
        if secret is None:
            raise InvalidSignature("unknown TUPAS key version", code="tupas_keyvers")
        received = fields["B02K_MAC"]
        if len(received) != _MAC_LENGTH[alg] or not _HEX.fullmatch(received):
            raise InvalidSignature("malformed TUPAS MAC", code="bad_mac")
        expected = compute_mac(response_mac_values(fields), secret, alg, charset=self.charset)
        if not hmac.compare_digest(expected.encode(), received.upper().encode()):
            raise InvalidSignature("TUPAS MAC does not verify", code="bad_mac")

    def _check_time(self, timestmp: str, now: float, issued: float) -> datetime:
        """``NNN`` + ``yyyymmddhhmmss`` + sequence, in the bank's local time (TUPAS §1.4)."""
        try:
            naive = datetime.strptime(timestmp[3:17], "%Y%m%d%H%M%S")
        except ValueError as exc:
            raise InvalidInput("malformed TUPAS timestamp", code="tupas_fields") from exc
        when = naive.replace(tzinfo=self.tz).timestamp()
        if when > now + self.skew or when < issued - self.skew:
            raise InvalidInput("TUPAS timestamp outside the flow", code="tupas_time")
        if now - when > self.max_age:
            raise Expired("TUPAS response is too old", code="tupas_expired")
        return datetime.fromtimestamp(when, UTC)

    def _identity(self, fields: Mapping[str, str], at: datetime) -> Identity:
        """Map CUSTTYPE/CUSTID to an Identity (TUPAS §1.5)."""
        custtype = fields["B02K_CUSTTYPE"]
        custid = fields["B02K_CUSTID"].strip()
        name = fields["B02K_CUSTNAME"].strip()
        attributes: dict[str, str] = {"bank": self.bank_number, "custtype": custtype}
        national_id: NationalId | None = None
        given = family = None
        subject_type: SubjectType = "person"
        if custtype == "01":
            national_id = NationalId.parse(custid, "FI")
            subject = national_id.value
            given, family = self._split_name(name)
        elif custtype == "03":
            business_id = self._business_id(custid)
            if not self.allow_organizations:
                raise AccessDenied(
                    "TUPAS identified a company, not a person", code="tupas_organization"
                )
            attributes["business_id"] = business_id
            attributes["company_name"] = name
            subject = business_id
            subject_type = "organization"
        elif custtype == "04":
            if not is_valid_satu(custid.upper()):
                raise InvalidInput("invalid SATU in TUPAS response", code="tupas_satu")
            attributes["satu"] = custid.upper()
            subject = attributes["satu"]
            given, family = self._split_name(name)
        elif custtype == "08":
            attributes["business_id"] = self._business_id(custid)
            attributes["company_name"] = name
            userid = fields.get("B02K_USERID", "").strip()
            if not userid:
                raise InvalidInput("corporate TUPAS response without user id", code="tupas_user")
            national_id = NationalId.parse(userid, "FI")
            subject = national_id.value
            given, family = self._split_name(fields.get("B02K_USERNAME", "").strip())
        elif custtype in ("00", "10", "11", "12"):
            raise ProviderError("the bank found no identifier", code="tupas_no_identifier")
        else:
            # 02 (truncated HETU) cannot identify a person; 05/06/07/09 are encrypted
            # with an algorithm the public spec excerpts do not give (TUPAS §1.5).
            raise ProviderError(
                "TUPAS identifier type not supported (request a plaintext IDTYPE)",
                code="tupas_custtype",
                details={"custtype": custtype},
            )
        if name:
            attributes.setdefault("name", name)
        return Identity(
            provider=self.info.name,
            method="tupas",
            subject=subject,
            national_id=national_id,
            loa=self.info.loa,
            authenticated_at=at,
            given_name=given,
            family_name=family,
            attributes=attributes,
            subject_type=subject_type,
            raw={
                "idnbr": fields["B02K_IDNBR"],
                "timestmp": fields["B02K_TIMESTMP"],
                "custtype": custtype,
                "keyvers": fields["B02K_KEYVERS"],
                "alg": fields["B02K_ALG"],
            },
        )

    @staticmethod
    def _business_id(value: str) -> str:
        if not ytunnus.is_valid(value):
            raise InvalidInput("invalid business id in TUPAS response", code="tupas_ytunnus")
        return str(ytunnus.format(value))

    def _split_name(self, name: str) -> tuple[str | None, str | None]:
        """Bank registers give "SURNAME GIVEN NAMES" (e.g. ``TESTI ANNA``)."""
        if self.name_order != "family_first" or " " not in name:
            return None, None
        family, given = name.split(" ", 1)
        return given.strip() or None, family or None


def from_config(config: ProviderConfig, settings: Settings) -> TupasProvider:
    """Registry entry point for protocol ``tupas``."""
    return TupasProvider(config, settings)
