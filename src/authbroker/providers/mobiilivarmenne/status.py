"""Mobiilivarmenne status codes (MID §3.6) and the typed errors they map to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import (
    AccessDenied,
    AuthBrokerError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    ProviderUnavailable,
    UntrustedCertificate,
    UserCancelled,
)

# --- status codes (MID §3.6) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What one TS 102 204 / FiCom status or fault code means for the flow.

    ``error`` is None for the codes that keep the flow going (100, 504) or end in a
    signature to verify (500, 502). ``message`` keys: fi, sv, en.
    """

    code: int
    name: str
    error: type[AuthBrokerError] | None
    reason: str
    message: Mapping[str, str]


_MSG_PENDING = {
    "fi": "Vahvista tunnistautuminen puhelimessasi. "
    "Varmista, että puhelimessa näkyy tunniste {code}.",
    "sv": "Bekräfta identifieringen i din telefon. Kontrollera att telefonen visar koden {code}.",
    "en": "Confirm the identification on your phone. Check that the phone shows the code {code}.",
}
_MSG_GENERIC = {
    "fi": "Mobiilivarmennepalvelussa tapahtui virhe. Yritä myöhemmin uudelleen.",
    "sv": "Ett fel uppstod i mobilcertifikattjänsten. Försök igen senare.",
    "en": "The Mobile ID service failed. Please try again later.",
}
_MSG_UNAVAILABLE = {
    "fi": "Mobiilivarmennepalvelu ei ole juuri nyt käytettävissä. Yritä myöhemmin uudelleen.",
    "sv": "Mobilcertifikattjänsten är inte tillgänglig just nu. Försök igen senare.",
    "en": "The Mobile ID service is not available right now. Please try again later.",
}
# MID-01: "unknown number" and "no Mobile ID" must look the same to the browser.
_MSG_NO_MOBILE_ID = {
    "fi": "Tällä puhelinnumerolla ei voi tunnistautua mobiilivarmenteella.",
    "sv": "Det går inte att identifiera sig med mobilcertifikat med det här numret.",
    "en": "Mobile ID cannot be used with this phone number.",
}
_MSG_CANCEL = {
    "fi": "Tunnistautuminen peruutettiin.",
    "sv": "Identifieringen avbröts.",
    "en": "The identification was cancelled.",
}
_MSG_EXPIRED = {
    "fi": "Tunnistautumisen aika umpeutui. Yritä uudelleen.",
    "sv": "Tiden för identifieringen gick ut. Försök igen.",
    "en": "The identification timed out. Please try again.",
}
_MSG_BLOCKED = {
    "fi": "Mobiilivarmenteesi on lukittu. Ota yhteyttä puhelinoperaattoriisi.",
    "sv": "Ditt mobilcertifikat är spärrat. Kontakta din mobiloperatör.",
    "en": "Your Mobile ID is locked. Please contact your mobile operator.",
}
_MSG_CERT = {
    "fi": "Mobiilivarmenteesi ei ole voimassa. Ota yhteyttä puhelinoperaattoriisi.",
    "sv": "Ditt mobilcertifikat är inte giltigt. Kontakta din mobiloperatör.",
    "en": "Your Mobile ID certificate is not valid. Please contact your mobile operator.",
}
_MSG_SIGNATURE = {
    "fi": "Allekirjoitus ei ollut kelvollinen. Yritä uudelleen.",
    "sv": "Signaturen var inte giltig. Försök igen.",
    "en": "The signature was not valid. Please try again.",
}
_MSG_PHONE = {
    "fi": "Puhelimeesi ei saatu yhteyttä. Tarkista, että puhelin on päällä, ja yritä uudelleen.",
    "sv": "Det gick inte att nå din telefon. Kontrollera att den är på och försök igen.",
    "en": "Your phone could not be reached. Check that it is switched on and try again.",
}
_MSG_NOSPAM = {
    "fi": "Roskapostinestokoodi puuttuu tai on väärä.",
    "sv": "Skräppostskyddskoden saknas eller är fel.",
    "en": "The anti-spam code is missing or wrong.",
}
_MSG_DISABLED = {
    "fi": "Olet estänyt tämän palvelun käytön mobiilivarmenteessasi.",
    "sv": "Du har spärrat den här tjänsten i ditt mobilcertifikat.",
    "en": "You have disabled this service for your Mobile ID.",
}


def _s(
    code: int,
    name: str,
    error: type[AuthBrokerError] | None,
    reason: str,
    message: Mapping[str, str] = _MSG_GENERIC,
) -> StatusInfo:
    return StatusInfo(code, name, error, reason, message)


#: Every status and fault code of the FiCom guideline, Appendix C (MID §3.6).
STATUS: Mapping[int, StatusInfo] = {
    s.code: s
    for s in (
        # Status values of MSS_SignatureResp / MSS_StatusResp.
        _s(100, "REQUEST_OK", None, "pending", _MSG_PENDING),
        _s(500, "SIGNATURE", None, "signature", _MSG_PENDING),
        _s(501, "REVOKED_CERTIFICATE", UntrustedCertificate, "mid_revoked", _MSG_CERT),
        _s(502, "VALID_SIGNATURE", None, "signature", _MSG_PENDING),
        _s(503, "INVALID_SIGNATURE", InvalidSignature, "mid_invalid_signature", _MSG_SIGNATURE),
        _s(504, "OUTSTANDING_TRANSACTION", None, "pending", _MSG_PENDING),
        _s(505, "CONSTRAINT_MISMATCH", UntrustedCertificate, "mid_constraint", _MSG_CERT),
        # Faults, env:Sender: our request was wrong (configuration) or the user unknown.
        _s(101, "WRONG_PARAM", ProviderError, "mid_wrong_param"),
        _s(102, "MISSING_PARAM", ProviderError, "mid_missing_param"),
        _s(103, "WRONG_DATA_LENGTH", ProviderError, "mid_data_length"),
        _s(104, "UNAUTHORIZED_ACCESS", ProviderError, "mid_unauthorized"),
        _s(105, "UNKNOWN_CLIENT", ProviderError, "mid_no_mobile_id", _MSG_NO_MOBILE_ID),
        _s(107, "INAPPROPRIATE_DATA", ProviderError, "mid_inappropriate_data"),
        _s(108, "INCOMPATIBLE_INTERFACE", ProviderError, "mid_interface"),
        _s(701, "ROAMING_HEADER_MISSING", ProviderError, "mid_roaming"),
        _s(702, "ROAMING_INPUT_MISSING", ProviderError, "mid_roaming"),
        _s(703, "ROAMING_INPUT_MISSING", ProviderError, "mid_roaming"),
        _s(710, "ROAMING_INPUT_MISSING", ProviderError, "mid_roaming"),
        _s(720, "VALIDITY_DATE_EXPIRED", Expired, "mid_expired", _MSG_EXPIRED),
        # Faults, env:Receiver: the HMSSP, the phone or the user ended the transaction.
        _s(109, "UNSUPPORTED_PROFILE", ProviderError, "mid_unsupported_profile"),
        _s(208, "EXPIRED_TRANSACTION", Expired, "mid_expired", _MSG_EXPIRED),
        _s(209, "OTA_ERROR", ProviderError, "mid_ota", _MSG_PHONE),
        _s(401, "USER_CANCEL", UserCancelled, "mid_cancelled", _MSG_CANCEL),
        _s(402, "PIN_NR_BLOCKED", AccessDenied, "mid_pin_blocked", _MSG_BLOCKED),
        _s(403, "CARD_BLOCKED", AccessDenied, "mid_card_blocked", _MSG_BLOCKED),
        _s(404, "NO_KEY_FOUND", ProviderError, "mid_no_mobile_id", _MSG_NO_MOBILE_ID),
        _s(405, "NO_URL_FOUND", ProviderError, "mid_no_url"),
        _s(406, "PB_SIGNATURE_PROCESS", ProviderError, "mid_signature_process", _MSG_PHONE),
        _s(407, "REGISTRATION_NOK", ProviderError, "mid_registration"),
        _s(422, "NO_CERT_FOUND", ProviderError, "mid_no_mobile_id", _MSG_NO_MOBILE_ID),
        _s(423, "CRL_PB", ProviderError, "mid_crl"),
        _s(424, "CRL_EXPIRED", ProviderError, "mid_crl"),
        _s(425, "ERROR_CERTIFICATE", UntrustedCertificate, "mid_certificate", _MSG_CERT),
        _s(750, "RE_SERVICE_UNAVAILABLE", ProviderUnavailable, "mid_unavailable", _MSG_UNAVAILABLE),
        _s(
            760,
            "IDENTITY_ISSUER_UNAVAILABLE",
            ProviderUnavailable,
            "mid_unavailable",
            _MSG_UNAVAILABLE,
        ),
        _s(770, "VE_SERVICE_UNAVAILABLE", ProviderUnavailable, "mid_unavailable", _MSG_UNAVAILABLE),
        _s(780, "SERVICE_UNAVAILABLE", ProviderUnavailable, "mid_unavailable", _MSG_UNAVAILABLE),
        _s(900, "INTERNAL_ERROR", ProviderError, "mid_internal"),
    )
}

#: FiCom specifier codes that change the meaning for the user (MID §3.6).
_SPECIFIERS: Mapping[int, StatusInfo] = {
    1011: _s(1011, "INVALID_NOSPAM", InvalidInput, "mid_nospam", _MSG_NOSPAM),
    1012: _s(1012, "MISSING_NOSPAM", InvalidInput, "mid_nospam", _MSG_NOSPAM),
    1041: _s(1041, "PROFILE_DISABLED_BY_USER", AccessDenied, "mid_disabled", _MSG_DISABLED),
    1042: _s(1042, "SERVICE_DISABLED_BY_USER", AccessDenied, "mid_disabled", _MSG_DISABLED),
    2082: _s(2082, "USER_TIMEOUT", Expired, "mid_expired", _MSG_EXPIRED),
    4021: _s(4021, "PIN_BLOCKED", AccessDenied, "mid_pin_blocked", _MSG_BLOCKED),
}


def status_error(code: int, specifier: int | None = None) -> AuthBrokerError:
    """The typed error for a final failure code, with the localized user message.

    ``details`` carries the numeric status and the fi/sv/en message (no personal
    data), so a hosted page can show the MSSP's meaning in the user's language.
    """
    info = _SPECIFIERS.get(specifier or 0) or STATUS.get(code)
    if info is None or info.error is None:
        info = _s(code, "UNKNOWN", ProviderError, "mid_unknown_status")
    details = {"status": code, "message": dict(info.message)}
    if specifier:
        details["specifier"] = specifier
    error_class = info.error or ProviderError
    return error_class(f"Mobile ID: {info.name}", code=info.reason, details=details)
