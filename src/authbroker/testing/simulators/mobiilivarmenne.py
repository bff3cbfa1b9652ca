"""A simulated MSSP (acquiring entity + home MSSP) for Mobiilivarmenne.

It speaks the same ETSI TS 102 204 REST/JSON binding as the adapter
(MID §3.7, section marks as in :mod:`authbroker.providers.mobiilivarmenne`): one POST
endpoint taking ``MSS_SignatureReq``
and ``MSS_StatusReq``, HTTP Basic authentication plus ``AP_PWD``, faults as HTTP 500
with a ``Fault`` body. It validates requests the way the FiCom guideline describes
(versions, AP_TransID, MSISDN format, DataToBeSigned encoding and length, format,
profile, the mandatory eventId and noSpam services; MID §3.2-3.4) and answers with
the FiCom status and fault codes (MID §3.6).

Signatures are real: a test CA and per-user certificates are generated with
:mod:`cryptography`, and each "phone" signs the decoded challenge as a CMS
SignedData (``PKCS7SignatureBuilder``). Per MSISDN, a :class:`Script` says how many
status polls stay outstanding, which final status or fault to answer, and which
defect to put into the signature (forged, wrong data, untrusted CA, expired or
wrong-key-usage certificate, no signed attributes, two signers, signer id naming
another certificate).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ...config import ProviderConfig, Settings
from ...providers.mobiilivarmenne import (
    ADDITIONAL_SERVICE,
    MSS_FORMAT_PKCS7,
    PERSON_ID,
    SIGNATURE_PROFILES,
    STATUS,
)
from ..registry import RunningSimulator
from .server import SimRequest, SimResponse, serve
from .testpki import (
    TestCa,
    authority_key_id,
    basic_constraints,
    cert_pem,
    key_usage,
    subject_key_id,
)

__all__ = ["MSSP", "MobileUser", "Script", "TestPki", "start"]

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,31}")
_EVENT_ID = re.compile(r"[A-Za-z0-9]{4,8}")
_MSISDN = re.compile(r"\+[1-9][0-9]{2,14}")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Defects the simulator can put into a signature (MID-03 fixtures).
MISBEHAVIOURS = frozenset(
    {
        "forge",
        "wrong_data",
        "other_challenge",
        "untrusted_ca",
        "expired_cert",
        "wrong_key_usage",
        "no_attrs",
        "two_signers",
        "sid_mismatch",
        "not_der",
        "cert_without_satu",
    }
)
#: Hostile or broken PersonIdentity replies (issue 23): the HETU not tied to the
#: signer by the SATU. ``no_satu``: reply without the satu attribute;
#: ``partial_failure``: status ``#partialFailure`` without satu; ``other_satu``: the
#: SATU and HETU of someone else.
PERSON_REPLIES = frozenset({"no_satu", "partial_failure", "other_satu"})


def _name(cn: str, **extra: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FI")]
    oids = {"sn": NameOID.SURNAME, "gn": NameOID.GIVEN_NAME, "serial": NameOID.SERIAL_NUMBER}
    attrs += [x509.NameAttribute(oids[k], v) for k, v in extra.items()]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class TestPki:
    """A test Mobile ID CA (trusted by the adapter) and an unrelated one (not trusted)."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.ca_key, self.ca = self._ca("Authbroker Test Mobile ID CA", now)
        self.rogue_key, self.rogue_ca = self._ca("Authbroker Rogue CA", now)

    @staticmethod
    def _ca(cn: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        ca = TestCa.create(
            _name(cn),
            key=key,
            not_before=now - dt.timedelta(days=30),
            not_after=now + dt.timedelta(days=3650),
        )
        return key, ca.cert

    def issue(
        self,
        subject: x509.Name,
        key: PrivateKey,
        *,
        rogue: bool = False,
        expired: bool = False,
        digital_signature: bool = True,
        non_repudiation: bool = False,
    ) -> x509.Certificate:
        """A user certificate from the test CA (or the rogue CA)."""
        now = dt.datetime.now(dt.UTC)
        ca_key, ca = (self.rogue_key, self.rogue_ca) if rogue else (self.ca_key, self.ca)
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=730)
        if expired:
            start, end = now - dt.timedelta(days=800), now - dt.timedelta(days=1)
        usage = key_usage(
            digital_signature=digital_signature,
            content_commitment=non_repudiation,
            key_encipherment=not (digital_signature or non_repudiation),
        )
        return TestCa(ca_key, ca).issue(
            subject,
            key.public_key(),
            not_before=start,
            not_after=end,
            extensions=[
                basic_constraints(False),
                (usage, True),
                subject_key_id(key.public_key()),
                authority_key_id(ca),
            ],
        )

    @property
    def ca_pem(self) -> str:
        return cert_pem(self.ca)


@dataclass
class Script:
    """How the simulated phone and MSSP answer one MSISDN.

    ``outcome`` is ``"sign"`` or a status/fault code of MID §3.6 (``401`` user
    cancel, ``208`` expired, ``501`` revoked...); ``specifier`` adds the FiCom
    sub-code; ``pending_polls`` is how many status queries answer ``504`` first
    (scripted delay); ``misbehave`` names one signature defect.
    """

    outcome: str | int = "sign"
    specifier: int | None = None
    pending_polls: int = 1
    final_status: int = 502
    misbehave: str | None = None
    at_request: bool = False  # fault already at MSS_SignatureReq
    person_reply: str | None = None  # one of PERSON_REPLIES


@dataclass
class MobileUser:
    """A test subscriber: number, names, identifiers, key and certificate."""

    msisdn: str
    given_name: str
    surname: str
    hetu: str
    satu: str
    key: PrivateKey = field(repr=False)
    cert: x509.Certificate = field(repr=False)
    nospam: str = ""
    script: Script = field(default_factory=Script)


@dataclass
class _Transaction:
    transid: str
    user: MobileUser
    challenge: bytes
    script: Script
    polls_left: int
    person_attributes: list[str]
    request: dict[str, Any]


def _fault(code: int, specifier: int | None = None) -> SimResponse:
    info = STATUS.get(code)
    role = "env:Sender" if code < 200 or 700 <= code < 750 else "env:Receiver"
    sub: dict[str, Any] = {"Value": f"fi:_{code}"}
    if specifier:
        sub["SubCode"] = {"Value": f"fi:{specifier}"}
    body = {
        "Fault": {
            "Code": {"Value": role, "SubCode": sub},
            "Reason": info.name if info else "INTERNAL_ERROR",
        }
    }
    return SimResponse.json(body, status=500)


class _Refused(Exception):
    def __init__(self, code: int, specifier: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.specifier = specifier


class MSSP:
    """The simulated acquiring entity and home MSSPs behind one REST endpoint."""

    def __init__(self, *, ap_id: str, ap_password: str, pki: TestPki | None = None) -> None:
        self.ap_id = ap_id
        self.ap_password = ap_password
        self.pki = pki or TestPki()
        self.users: dict[str, MobileUser] = {}
        self.transactions: dict[str, _Transaction] = {}
        self.seen_ap_transids: set[str] = set()
        #: Reasons of refused requests, newest last (fault code and specifier).
        self.refused: list[tuple[int, int | None]] = []
        self.last_challenge: bytes | None = None
        self._lock = threading.Lock()
        self.add_user("+358401234567", "ANNA", "DEMO", "010170-960F", "999020016")
        self.add_user("+358401234568", "VILLE", "TESTI", "150485-914A", "99901112H", rsa_key=True)

    # -- test users ------------------------------------------------------------------

    def add_user(
        self,
        msisdn: str,
        given_name: str,
        surname: str,
        hetu: str,
        satu: str,
        *,
        rsa_key: bool = False,
        nospam: str = "",
    ) -> MobileUser:
        key: PrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        subject = self._subject(given_name, surname, satu)
        cert = self.pki.issue(subject, key)
        user = MobileUser(msisdn, given_name, surname, hetu, satu, key, cert, nospam)
        self.users[msisdn] = user
        return user

    @staticmethod
    def _subject(given: str, surname: str, satu: str) -> x509.Name:
        return _name(f"{surname} {given} {satu}", sn=surname, gn=given, serial=satu)

    def script(self, msisdn: str, **changes: Any) -> Script:
        """Replace the script of ``msisdn`` (tests): ``mssp.script(n, outcome=401)``."""
        user = self.users[msisdn]
        user.script = Script(**changes)
        if user.script.misbehave and user.script.misbehave not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {user.script.misbehave}")
        if user.script.person_reply and user.script.person_reply not in PERSON_REPLIES:
            raise ValueError(f"unknown PersonIdentity reply {user.script.person_reply}")
        return user.script

    def reset(self) -> None:
        for user in self.users.values():
            user.script = Script()
            user.nospam = ""

    # -- HTTP ------------------------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path != "/rest/service":
            return SimResponse(404, b"not found")
        if req.method != "POST":  # the endpoint exists; it takes POST only (RFC 9110 15.5.6)
            return SimResponse(405, b"method not allowed", {"Allow": "POST"})
        expected = "Basic " + base64.b64encode(f"{self.ap_id}:{self.ap_password}".encode()).decode()
        if not hmac.compare_digest(
            req.headers.get("authorization", "").encode(), expected.encode()
        ):
            return SimResponse(401, b"unauthorized", {"WWW-Authenticate": 'Basic realm="mssp"'})
        try:
            payload = req.json()
        except ValueError:
            return self._refuse(_Refused(101))
        if not isinstance(payload, dict) or len(payload) != 1:
            return self._refuse(_Refused(101))
        try:
            if "MSS_SignatureReq" in payload:
                return self._signature(payload["MSS_SignatureReq"])
            if "MSS_StatusReq" in payload:
                return self._status(payload["MSS_StatusReq"])
            raise _Refused(101)
        except _Refused as exc:
            return self._refuse(exc)

    def _refuse(self, exc: _Refused) -> SimResponse:
        with self._lock:
            self.refused.append((exc.code, exc.specifier))
        return _fault(exc.code, exc.specifier)

    def _common(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict):
            raise _Refused(101)
        if req.get("MajorVersion") != "1" or req.get("MinorVersion") != "1":
            raise _Refused(108)
        ap = req.get("AP_Info")
        if not isinstance(ap, dict):
            raise _Refused(102)
        if not hmac.compare_digest(str(ap.get("AP_ID", "")).encode(), self.ap_id.encode()):
            raise _Refused(104)
        if not hmac.compare_digest(str(ap.get("AP_PWD", "")).encode(), self.ap_password.encode()):
            raise _Refused(104)
        transid = ap.get("AP_TransID")
        if not isinstance(transid, str) or not _NCNAME.fullmatch(transid):
            raise _Refused(102)
        if not isinstance(ap.get("Instant"), str):
            raise _Refused(102)
        with self._lock:
            if transid in self.seen_ap_transids:
                raise _Refused(101)  # AP_TransID must be unique per AP
            self.seen_ap_transids.add(transid)
        if "MSSP_Info" not in req:
            raise _Refused(102)
        return ap

    def _signature(self, req: Any) -> SimResponse:
        ap = self._common(req)
        mode = req.get("MessagingMode")
        if mode not in ("asynchClientServer", "synch"):
            raise _Refused(101, 1013)
        if req.get("MSS_Format") != MSS_FORMAT_PKCS7:
            raise _Refused(101, 1017)
        if req.get("SignatureProfile") not in SIGNATURE_PROFILES.values():
            raise _Refused(109)
        if "DataToBeDisplayed" in req:
            raise _Refused(101, 1015)
        dtbs = req.get("DataToBeSigned")
        if not isinstance(dtbs, dict) or not isinstance(dtbs.get("Data"), str):
            raise _Refused(102, 1022)
        if (dtbs.get("MimeType"), dtbs.get("Encoding")) != ("application/octet-stream", "base64"):
            raise _Refused(101, 1016)
        if len(dtbs["Data"]) > 160:
            raise _Refused(103)
        try:
            challenge = base64.b64decode(dtbs["Data"], validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(107) from None
        user_obj = req.get("MobileUser")
        msisdn = user_obj.get("MSISDN") if isinstance(user_obj, dict) else None
        if not isinstance(msisdn, str) or not _MSISDN.fullmatch(msisdn):
            raise _Refused(105, 1051)
        services = req.get("AdditionalServices")
        if not isinstance(services, list):
            raise _Refused(102)
        by_uri: dict[str, dict[str, Any]] = {}
        for entry in services:
            if not isinstance(entry, dict) or entry.get("Description") not in (
                ADDITIONAL_SERVICE.values()
            ):
                raise _Refused(101, 1014)
            by_uri[entry["Description"]] = entry
        event = by_uri.get(ADDITIONAL_SERVICE["event_id"], {}).get("EventID")
        if not isinstance(event, dict) or not _EVENT_ID.fullmatch(str(event.get("Value", ""))):
            raise _Refused(102)
        nospam = by_uri.get(ADDITIONAL_SERVICE["no_spam"], {}).get("NoSpamCode")
        if not isinstance(nospam, dict):
            raise _Refused(102)
        person: list[str] = []
        query = by_uri.get(ADDITIONAL_SERVICE["person_identity"], {}).get("AttributeQuery")
        if isinstance(query, dict) and isinstance(query.get("Attributes"), list):
            person = [str(a.get("Name")) for a in query["Attributes"] if isinstance(a, dict)]
        user = self.users.get(msisdn)
        if user is None:
            raise _Refused(105, 1052)
        if user.nospam and nospam.get("Verify") != "no":
            code = str(nospam.get("Code", ""))
            if not code:
                raise _Refused(101, 1012)
            if not hmac.compare_digest(code.encode(), user.nospam.encode()):
                raise _Refused(101, 1011)
        script = user.script
        if script.at_request and script.outcome != "sign":
            raise _Refused(int(script.outcome), script.specifier)
        transid = "T" + secrets.token_hex(12)
        tx = _Transaction(transid, user, challenge, script, script.pending_polls, person, dict(req))
        with self._lock:
            self.transactions[transid] = tx
        echo = {
            "MajorVersion": "1",
            "MinorVersion": "1",
            "AP_Info": {k: v for k, v in ap.items() if k != "AP_PWD"},
            "MSSP_Info": {"MSSP_ID": {"URI": "http://mssp.simulator.authbroker.test"}},
            "MobileUser": {"MSISDN": msisdn},
            "MSSP_TransID": transid,
            "SignatureProfile": req.get("SignatureProfile"),
        }
        if mode == "synch":
            return self._final(tx, "MSS_SignatureResp", echo)
        body = {**echo, "Status": {"StatusCode": {"Value": "100"}, "StatusMessage": "REQUEST_OK"}}
        return SimResponse.json({"MSS_SignatureResp": body})

    def _status(self, req: Any) -> SimResponse:
        ap = self._common(req)
        transid = req.get("MSSP_TransID")
        tx = self.transactions.get(transid) if isinstance(transid, str) else None
        if tx is None:
            raise _Refused(101)
        echo = {
            "MajorVersion": "1",
            "MinorVersion": "1",
            "AP_Info": {k: v for k, v in ap.items() if k != "AP_PWD"},
            "MSSP_Info": {"MSSP_ID": {"URI": "http://mssp.simulator.authbroker.test"}},
            "MobileUser": {"MSISDN": tx.user.msisdn},
            "MSSP_TransID": tx.transid,
        }
        with self._lock:
            pending = tx.polls_left > 0
            if pending:
                tx.polls_left -= 1
        if pending:
            status = {"StatusCode": {"Value": "504"}, "StatusMessage": "OUTSTANDING_TRANSACTION"}
            return SimResponse.json({"MSS_StatusResp": {**echo, "Status": status}})
        return self._final(tx, "MSS_StatusResp", echo)

    def _final(self, tx: _Transaction, kind: str, echo: Mapping[str, Any]) -> SimResponse:
        script = tx.script
        if script.outcome != "sign":
            code = int(script.outcome)
            if code in (501, 503, 505):
                status = {"StatusCode": {"Value": str(code)}, "StatusMessage": STATUS[code].name}
                return SimResponse.json({kind: {**echo, "Status": status}})
            raise _Refused(code, script.specifier)
        der = self.sign(tx.user, tx.challenge, script.misbehave)
        with self._lock:
            self.last_challenge = tx.challenge
        code = script.final_status
        body: dict[str, Any] = {
            **echo,
            "MSS_Signature": {"Base64Signature": base64.b64encode(der).decode()},
            "Status": {"StatusCode": {"Value": str(code)}, "StatusMessage": STATUS[code].name},
        }
        if tx.person_attributes:
            body["ServiceResponses"] = [self._person_reply(tx)]
        return SimResponse.json({kind: body})

    @staticmethod
    def _person_reply(tx: _Transaction) -> dict[str, Any]:
        """The PersonIdentity service response (FiCom guideline 2.1, "PersonIdentity"),
        honest or in the scripted hostile shape."""
        values = {
            "hetu": tx.user.hetu,
            "satu": tx.user.satu,
            "givenName": tx.user.given_name,
            "surName": tx.user.surname,
        }
        status = "ok"
        variant = tx.script.person_reply
        if variant in ("no_satu", "partial_failure"):
            del values["satu"]
            status = "partialFailure" if variant == "partial_failure" else "ok"
        elif variant == "other_satu":
            values.update(hetu="150485-914A", satu="99901112H", givenName="VILLE")
        return {
            "Description": ADDITIONAL_SERVICE["person_identity"],
            "Status": {"StatusCode": {"Value": PERSON_ID + status}},
            "Attributes": [
                {"Name": name, "Value": values[name[len(PERSON_ID) :]]}
                for name in tx.person_attributes
                if name.startswith(PERSON_ID) and name[len(PERSON_ID) :] in values
            ],
        }

    # -- signatures ------------------------------------------------------------------

    def sign(self, user: MobileUser, challenge: bytes, misbehave: str | None = None) -> bytes:
        """The phone's CMS SignedData over ``challenge`` (with the scripted defect)."""
        key, cert = user.key, user.cert
        data = challenge
        options = [pkcs7.PKCS7Options.Binary]
        extra_signer: tuple[x509.Certificate, PrivateKey] | None = None
        if misbehave == "wrong_data":
            data = challenge + b"!"
        elif misbehave == "other_challenge":
            data = self.last_challenge or secrets.token_bytes(32)
        elif misbehave in ("untrusted_ca", "expired_cert", "wrong_key_usage"):
            cert = self.pki.issue(
                cert.subject,
                key,
                rogue=misbehave == "untrusted_ca",
                expired=misbehave == "expired_cert",
                digital_signature=misbehave != "wrong_key_usage",
            )
        elif misbehave == "cert_without_satu":
            # A valid certificate of the trusted CA whose subject has no SATU.
            subject = x509.Name([a for a in cert.subject if a.oid != NameOID.SERIAL_NUMBER])
            cert = self.pki.issue(subject, key)
        elif misbehave == "no_attrs":
            options.append(pkcs7.PKCS7Options.NoAttributes)
        elif misbehave == "two_signers":
            other_key = ec.generate_private_key(ec.SECP256R1())
            extra_signer = (self.pki.issue(cert.subject, other_key), other_key)
        builder = (
            pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
        )
        if extra_signer is not None:
            builder = builder.add_signer(extra_signer[0], extra_signer[1], hashes.SHA256())
        der = builder.sign(serialization.Encoding.DER, options)
        if misbehave == "forge":
            der = _edit_signature(der)
        elif misbehave == "sid_mismatch":
            other_key = ec.generate_private_key(ec.SECP256R1())
            der = _point_sid_elsewhere(der, self.pki.issue(cert.subject, other_key))
        elif misbehave == "not_der":
            der = _long_form_length(der)
        return der


def _edit_signature(der: bytes) -> bytes:
    info = asn1_cms.ContentInfo.load(der)
    si = info["content"]["signer_infos"][0]
    sig = bytearray(si["signature"].native)
    sig[len(sig) // 2] ^= 0x01
    si["signature"] = asn1_cms.OctetString(bytes(sig))
    return bytes(info.dump(force=True))


def _point_sid_elsewhere(der: bytes, other: x509.Certificate) -> bytes:
    """Add ``other`` to the certificates and make the signer id name it instead."""
    info = asn1_cms.ContentInfo.load(der)
    signed = info["content"]
    other_asn1 = asn1_x509.Certificate.load(other.public_bytes(serialization.Encoding.DER))
    certs = list(signed["certificates"])
    certs.append(asn1_cms.CertificateChoices(name="certificate", value=other_asn1))
    signed["certificates"] = asn1_cms.CertificateSet(certs)
    si = signed["signer_infos"][0]
    si["sid"] = asn1_cms.SignerIdentifier(
        name="issuer_and_serial_number",
        value=asn1_cms.IssuerAndSerialNumber(
            {"issuer": other_asn1.issuer, "serial_number": other_asn1.serial_number}
        ),
    )
    return bytes(info.dump(force=True))


def _long_form_length(der: bytes) -> bytes:
    """Re-encode the outer length in a non-minimal form (valid BER, invalid DER)."""
    if der[0] != 0x30 or der[1] != 0x82:
        return der
    return b"\x30\x83\x00" + der[2:]


def start(
    config: ProviderConfig, settings: Settings, *, in_process: bool = False
) -> RunningSimulator:
    """Start the MSSP on loopback or in process (registry entry point)."""
    ap_id = str(config.get("ap_id") or "http://simulator.authbroker.test/ap")
    password = config.secret("ap_password", required=False) or secrets.token_urlsafe(18)
    mssp = MSSP(ap_id=ap_id, ap_password=password)
    server = serve(mssp.handle, in_process=in_process)
    overrides = {
        "endpoint": f"{server.url}/rest/service",
        "ap_id": ap_id,
        "ap_password": password,
        "trust_anchors": [mssp.pki.ca_pem],
    }
    users = [
        {"msisdn": u.msisdn, "name": f"{u.given_name} {u.surname}"} for u in mssp.users.values()
    ]
    return RunningSimulator(
        overrides=overrides, server=server, extra={"mssp": mssp, "users": users}
    )
