"""R-13: no secret or full identity number in any log line, audit event, error or repr.

One test runs every flow end to end on the simulators, with failures sprinkled in
(forged state, replayed callback, wrong OTP, wrong password, reused refresh token,
bad API signature), while

* every log record of every logger is captured at DEBUG (message, arguments and
  formatted exception chain),
* every audit event goes to a memory sink (and through the JSON-lines sink to the
  captured log),
* every AuthBrokerError raised is kept with its ``str``, ``repr``, ``details`` and
  the ``str`` of each chained cause,
* the ``repr`` of everything the flows return (Done, Identity, sessions, grants,
  challenges, token pairs, links, principals) is recorded.

Every secret the run sees is collected as it appears: OTP codes, passwords, access
and refresh tokens, ID tokens, authorization codes, link tokens and URLs, PKCE
verifiers, state and nonce values, client secrets and MAC keys, QR secrets and
autostart tokens, Web eID signatures, private-key PEM markers, and the full identity
numbers of the test persons. Then each collected text is searched for each secret,
and for anything shaped like a valid FI/EE/SE/NO identity number (validated with
the checksum, so timestamps are not counted). The expected number of hits is zero.

The test's "browser" uses urllib (which logs nothing), so the only HTTP logs are
those of authbroker's own drivers.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from authbroker import AutoPost, Broker, Challenge, Done, Poll, Redirect
from authbroker.audit import AuditLog, JsonLinesSink, MemorySink
from authbroker.config import load_config
from authbroker.engines.flows import FLOW_KEY
from authbroker.engines.sessions import SessionManager
from authbroker.errors import AuthBrokerError
from authbroker.http import HttpRequest, HttpResponse, SyncDriver
from authbroker.identity import NationalId
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker

T = TypeVar("T")

#: Shapes of identity numbers; each match is validated before it counts as a hit.
_ID_SHAPES = [
    ("FI", re.compile(r"(?<![0-9A-Za-z])\d{6}[-+A-FU-Y]\d{3}[0-9A-Y](?![0-9A-Za-z])")),
    ("SE", re.compile(r"(?<!\d)(?:\d{12}|\d{8}-\d{4}|\d{6}[-+]\d{4})(?!\d)")),
    ("EE", re.compile(r"(?<!\d)[1-6]\d{10}(?!\d)")),
    ("NO", re.compile(r"(?<!\d)\d{11}(?!\d)")),
]
_PEM_MARKERS = ("PRIVATE KEY-----", "BEGIN RSA PRIVATE", "BEGIN EC PRIVATE", "BEGIN PRIVATE")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _browser(url: str, form: dict[str, str] | None = None) -> dict[str, str]:
    """GET (or POST ``form`` to) ``url``; return the query of the 302 Location."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with _OPENER.open(url, data=data, timeout=10) as resp:
            raise AssertionError(f"expected a redirect, got {resp.status}")
    except urllib.error.HTTPError as exc:
        assert exc.code in (302, 303), exc.code
        location = exc.headers["Location"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


class _RecordingDriver(SyncDriver):
    """The broker's HTTP driver, noting every secret that crosses it."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.run = run

    def send(self, req: HttpRequest) -> HttpResponse:
        if req.body and req.headers.get("Content-Type", "").startswith("application/x-www"):
            for name, value in urllib.parse.parse_qsl(req.body.decode()):
                if name in ("code", "code_verifier", "client_assertion", "client_secret"):
                    self.run.secret(f"request {name}", value)
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            self.run.secret("basic auth", auth[6:])
        resp = super().send(req)
        if req.tag in ("token", "userinfo") and resp.body:
            try:
                body = json.loads(resp.body)
            except ValueError:
                body = {}
            if isinstance(body, dict):
                for name in ("id_token", "access_token", "refresh_token"):
                    if isinstance(body.get(name), str):
                        self.run.secret(f"provider {name}", body[name])
        return resp


class _Run:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.numbers: set[tuple[str, str]] = set()
        self.texts: list[tuple[str, str]] = []
        self.sink = MemorySink()
        self.audit = AuditLog([self.sink, JsonLinesSink()])

    def secret(self, label: str, value: object) -> None:
        if isinstance(value, str) and len(value) >= 6:
            self.secrets.setdefault(value, label)

    def number(self, country: str, value: str) -> None:
        self.numbers.add((country, value))
        self.secret(f"{country} identity number", value)

    def shown(self, where: str, value: object) -> None:
        self.texts.append((where, repr(value)))
        self.texts.append((where, str(value)))

    def error(self, where: str, exc: BaseException) -> None:
        self.texts.append((f"{where}: error", f"{exc!s} {exc!r}"))
        if isinstance(exc, AuthBrokerError):
            self.texts.append((f"{where}: error details", repr(dict(exc.details))))
        cause = exc.__cause__ or exc.__context__
        depth = 0
        while cause is not None and depth < 10:
            self.texts.append((f"{where}: cause", f"{cause!s} {type(cause).__name__}"))
            cause = cause.__cause__ or cause.__context__
            depth += 1

    def expect_error(self, where: str, call: Callable[[], object]) -> AuthBrokerError:
        try:
            call()
        except AuthBrokerError as exc:
            self.error(where, exc)
            return exc
        raise AssertionError(f"{where}: no error")

    def identity(self, where: str, done: object) -> None:
        assert isinstance(done, Done), done
        self.shown(where, done)
        self.shown(where, done.identity)
        nid = done.identity.national_id
        if nid is not None:
            self.number(nid.country, nid.value)


@pytest.fixture
def run(caplog: pytest.LogCaptureFixture) -> Iterator[_Run]:
    caplog.set_level(logging.DEBUG)
    r = _Run()
    yield r


def _broker(run: _Run) -> Broker:
    broker = simulated_broker(
        load_config(environ={}),
        store=MemoryStore(),
        driver=_RecordingDriver(run),
        audit=run.audit,
    )
    return broker


def _flow_data(broker: Broker, flow_id: str) -> dict[str, Any]:
    raw = broker.store.get(FLOW_KEY + flow_id)
    assert raw is not None
    data: dict[str, Any] = json.loads(raw)["d"]
    return data


def _note_overrides(run: _Run, broker: Broker, name: str) -> Any:
    running = broker.simulator(name)
    assert running is not None
    for key, value in running.overrides.items():
        if any(word in key for word in ("secret", "password", "key")) and isinstance(value, str):
            run.secret(f"{name} {key}", value)
        if key == "rp_keys" and isinstance(value, dict):
            for jwk in value.get("keys", []):
                for member in ("d", "p", "q"):
                    run.secret(f"{name} RP private key", jwk.get(member))
    return running


# --- the flows ------------------------------------------------------------------------


def _oidc_flows(run: _Run, broker: Broker) -> None:
    profiles = [
        ("ftn", {}),
        ("bankid-no", {}),
        ("tara", {}),
        ("broker-oidc", {"method": "se-bankid-same-device"}),
        ("broker-oidc", {"method": "fi-mobile-id"}),
    ]
    for name, params in profiles:
        running = _note_overrides(run, broker, name)
        running.extra["op"].control.auto_approve = True
        step = broker.begin(name, binding="b", params=params, return_to="/x")
        assert isinstance(step, Redirect)
        data = _flow_data(broker, step.flow_id)
        for key in ("verifier", "state", "nonce"):
            run.secret(f"{name} {key}", data.get(key))
        callback = _browser(step.url)
        run.secret(f"{name} authorization code", callback.get("code"))
        # A forged state on another flow first, then the real completion and a replay.
        forged = broker.begin(name, binding="b", params=params)
        run.secret(f"{name} state", _flow_data(broker, forged.flow_id).get("state"))
        bad_state = {**callback, "state": "x" * 43}
        run.expect_error(
            f"{name} forged",
            functools.partial(broker.advance, forged.flow_id, bad_state, binding="b"),
        )
        done = broker.advance(step.flow_id, callback, binding="b")
        run.identity(name, done)
        run.expect_error(
            f"{name} replay", functools.partial(broker.advance, step.flow_id, callback, binding="b")
        )


def _bankid_flow(run: _Run, broker: Broker) -> None:
    running = _note_overrides(run, broker, "bankid-se")
    sim = running.extra["simulator"]
    step = broker.begin("bankid-se", binding="b", client_ip="192.0.2.10")
    assert isinstance(step, Poll)
    data = _flow_data(broker, step.flow_id)
    for key, value in data.items():
        if "secret" in key.lower() or "token" in key.lower():
            run.secret(f"bankid {key}", value)
    run.number("SE", "199001010017")
    qr = broker.refresh(step.flow_id, binding="b").display.qr
    assert qr is not None and sim.scan(qr, "199001010017") == "ok"
    result: object = step
    for _ in range(10):
        result = broker.advance(step.flow_id, {}, binding="b")
        if isinstance(result, Done):
            break
        run.shown("bankid poll", result)
    run.identity("bankid-se", result)
    # A second order that the user cancels.
    other = broker.begin("bankid-se", binding="b", client_ip="192.0.2.10")
    broker.cancel(other.flow_id, binding="b")


def _web_eid_flow(run: _Run, broker: Broker) -> None:
    running = _note_overrides(run, broker, "web-eid")
    step = broker.begin("web-eid", binding="b")
    assert isinstance(step, Challenge)
    token = running.extra["make_token"](broker.settings.base_url, step.nonce)
    run.secret("web-eid nonce", step.nonce)
    parsed = json.loads(token)
    run.secret("web-eid signature", parsed.get("signature"))
    done = broker.advance(step.flow_id, {"token": token}, binding="b")
    run.identity("web-eid", done)
    other = broker.begin("web-eid", binding="b")
    run.expect_error(
        "web-eid reused token",
        lambda: broker.advance(other.flow_id, {"token": token}, binding="b"),
    )


def _tupas_flow(run: _Run, broker: Broker) -> None:
    _note_overrides(run, broker, "tupas-nordea")
    step = broker.begin("tupas-nordea", binding="b")
    assert isinstance(step, AutoPost)
    params = _browser(step.url, dict(step.fields))
    run.secret("tupas MAC", params.get("B02K_MAC"))
    run.secret("tupas CUSTID", params.get("B02K_CUSTID"))
    tampered = dict(params, B02K_CUSTNAME="MALLORY")
    other = broker.begin("tupas-nordea", binding="b")
    assert isinstance(other, AutoPost)
    run.expect_error(
        "tupas tampered",
        lambda: broker.advance(
            other.flow_id, {**tampered, "B02K_STAMP": other.fields["A01Y_STAMP"]}, binding="b"
        ),
    )
    done = broker.advance(step.flow_id, params, binding="b")
    run.identity("tupas", done)
    run.expect_error("tupas replay", lambda: broker.advance(step.flow_id, params, binding="b"))


def _mobiilivarmenne_flow(run: _Run, broker: Broker) -> None:
    _note_overrides(run, broker, "mobiilivarmenne")
    run.secret("phone", "+358401234567")
    step = broker.begin(
        "mobiilivarmenne", params={"msisdn": "+358401234567"}, binding="b", client_ip="10.0.0.1"
    )
    import time

    for _ in range(40):
        if not isinstance(step, Poll):
            break
        time.sleep(min(step.interval, 0.5) + 0.01)
        step = broker.advance(step.flow_id, {}, binding="b")
    run.identity("mobiilivarmenne", step)


def _direct_link_flow(run: _Run) -> None:
    from authbroker.engines.links import DirectLinks
    from authbroker.sms.outbox import OutboxSender

    outbox = OutboxSender()
    store = MemoryStore()
    key = "link-secret-" + secrets.token_urlsafe(32)
    run.secret("link secret", key)
    links = DirectLinks(
        store, outbox, secret_keys=[key], base_url="https://app.example", audit=run.audit
    )
    phone = "+358401234999"
    run.secret("phone", phone)
    issued = links.issue_link("user-7", phone, "invoice:approve", "inv-7", 3600)
    run.shown("link issued", issued)
    run.secret("link URL", issued.url)
    token = issued.url.rsplit("/", 1)[1]
    run.secret("link token", token)
    run.secret("link id", issued.link_id)
    challenge = links.open(token, "203.0.113.7", binding="b")
    run.shown("otp challenge", challenge)
    run.secret("challenge id", challenge.challenge_id)
    message = outbox.last()
    assert message is not None
    code = message.code()
    assert code is not None
    run.secret("OTP", code)
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    run.expect_error(
        "otp wrong",
        lambda: links.verify(challenge.challenge_id, wrong, binding="b", client_ip="203.0.113.7"),
    )
    run.expect_error("link tampered", lambda: links.open(token[:-2] + "xx", "203.0.113.7"))
    grant = links.verify(challenge.challenge_id, code, binding="b", client_ip="203.0.113.7")
    run.shown("link grant", grant)
    run.expect_error(
        "otp replay",
        lambda: links.verify(challenge.challenge_id, code, binding="b", client_ip="203.0.113.7"),
    )
    run.expect_error("link scope", lambda: grant.require("invoice:pay", "inv-7"))
    links.close()


def _mobile_flow(run: _Run, tmp: Path) -> None:
    from authbroker.credential_store import CredentialStore
    from authbroker.engines.credentials import Argon2Params, CredentialManager
    from authbroker.engines.sessions import Session
    from authbroker.engines.tokens import TokenIssuer
    from authbroker.identity import Loa

    store = CredentialStore(f"sqlite:///{tmp / 'cred.db'}")
    issuer = TokenIssuer(
        store,
        issuer="https://auth.example",
        audience="mobile-api",
        mobile_scopes=["invoices:read"],
        audit=run.audit,
    )
    manager = CredentialManager(
        store, MemoryStore(), issuer, argon2=Argon2Params.insecure_for_tests(), audit=run.audit
    )
    password = "kuusi kissaa kiipeää puuhun"
    run.secret("password", password)
    email = "aino.kettunen@example.fi"
    now = datetime.now(UTC).timestamp()
    session = Session(
        id="sess-" + secrets.token_urlsafe(16),
        user="acct-7",
        kind="full",
        loa=Loa.HIGH,
        created_at=now,
        last_seen=now,
        expires_at=now + 3600,
        epoch=0,
        csrf="csrf-" + secrets.token_urlsafe(16),
        identity={"given_name": "Aino", "family_name": "Kettunen"},
    )
    run.secret("session id", session.id)
    manager.enroll(session, email, password)
    run.expect_error(
        "login wrong password",
        lambda: manager.login(email, password + "x", "phone", "203.0.113.8"),
    )
    pair = manager.login(email, password, "phone", "203.0.113.8")
    run.shown("token pair", pair)
    run.secret("access token", pair.access_token)
    run.secret("refresh token", pair.refresh_token)
    claims = issuer.verify_access_token(pair.access_token)
    run.shown("access claims", claims)
    new = issuer.refresh(pair.refresh_token, client_ip="203.0.113.8")
    run.secret("access token", new.access_token)
    run.secret("refresh token", new.refresh_token)
    run.expect_error(
        "refresh reuse", lambda: issuer.refresh(pair.refresh_token, client_ip="203.0.113.8")
    )
    run.expect_error("bad access token", lambda: issuer.verify_access_token(pair.access_token[:-3]))
    store.close()


def _session_flow(run: _Run, identity_done: Done) -> None:
    store = MemoryStore()
    key = "session-secret-" + secrets.token_urlsafe(32)
    run.secret("session secret", key)
    sessions = SessionManager(store, [key])
    session = sessions.login("user-1", identity_done.identity)
    cookie = sessions.engine.cookie_value(session)
    run.secret("session cookie", cookie)
    run.secret("session id", session.id)
    run.secret("csrf token", session.csrf)
    run.shown("session", session)
    loaded = sessions.load(cookie)
    run.shown("session loaded", loaded)
    run.shown("cookie header", sessions.cookie_header(session, secure=True).split("=")[0])
    sessions.destroy(session)
    assert sessions.load(cookie) is None


def _api_flow(run: _Run) -> None:
    import httpx

    from authbroker.api_auth import (
        ApiKey,
        ApiSigner,
        ApiVerifier,
        HmacSecret,
        IntegrationCredential,
        MemoryKeyRegistry,
    )
    from authbroker.api_auth.components import Message

    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    run.secret("API private key", pem.splitlines()[1])
    hmac_secret = b"integration-secret-" + secrets.token_bytes(8).hex().encode()
    run.secret("API HMAC secret", hmac_secret.decode())
    registry = MemoryKeyRegistry()
    registry.add_credential(IntegrationCredential("cred-1", "acme-erp", "u-100"))
    registry.add_key(ApiKey("k-ed", "cred-1", private.public_key()))
    registry.add_key(ApiKey("k-hmac", "cred-1", HmacSecret(hmac_secret)))
    verifier = ApiVerifier(
        keys=registry,
        users=lambda user: True,
        companies=lambda cred, company: True,
        audit=run.audit,
    )
    url = "https://api.example/v1/invoices"
    for key_id, signing_key in (("k-ed", private), ("k-hmac", HmacSecret(hmac_secret))):
        request = httpx.Request("POST", url, content=b'{"amount": 1}')
        ApiSigner(key_id, signing_key, company="0112038-9").sign_request(request)
        message = Message(
            method=request.method,
            target_uri=str(request.url),
            headers=list(request.headers.items()),
            body=request.content,
        )
        run.secret("API signature", message.header("signature"))
        store = MemoryStore()
        principal = verifier.verify_sync(message, store)
        run.shown("api principal", principal)
        run.expect_error("api replay", functools.partial(verifier.verify_sync, message, store))
        tampered = Message(
            method=message.method,
            target_uri=message.target_uri,
            headers=message.headers,
            body=b'{"amount": 1000}',
        )
        run.expect_error(
            "api tampered", functools.partial(verifier.verify_sync, tampered, MemoryStore())
        )


# --- the search -------------------------------------------------------------------------


def _captured_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    out = []
    for record in caplog.records:
        parts = [record.getMessage(), repr(record.args)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        for name, value in vars(record).items():
            if name not in logging.LogRecord("", 0, "", 0, "", None, None).__dict__:
                parts.append(f"{name}={value!r}")  # structured extras
        out.append((f"log {record.name}:{record.levelname}", "\n".join(parts)))
    return out


def _valid_number(country: str, candidate: str) -> bool:
    try:
        NationalId.parse(candidate, country, allow_synthetic=True)
    except AuthBrokerError:
        return False
    return True


def _hits(run: _Run, texts: list[tuple[str, str]]) -> list[str]:
    hits = []
    for where, text in texts:
        for value, label in run.secrets.items():
            if value in text:
                hits.append(f"{label} in {where}: ...{_around(text, value)}...")
        for marker in _PEM_MARKERS:
            if marker in text:
                hits.append(f"private-key PEM marker in {where}")
        for country, pattern in _ID_SHAPES:
            for match in pattern.finditer(text):
                if _valid_number(country, match.group(0)):
                    hits.append(f"{country}-shaped identity number in {where}")
    return hits


def _around(text: str, value: str) -> str:
    i = text.index(value)
    return text[max(0, i - 40) : i].replace(value, "<secret>") + "<secret>"


def test_no_secret_in_logs_events_errors_or_reprs(
    run: _Run, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    broker = _broker(run)
    try:
        _oidc_flows(run, broker)
        _bankid_flow(run, broker)
        _web_eid_flow(run, broker)
        _tupas_flow(run, broker)
        _mobiilivarmenne_flow(run, broker)
        # A session from a completed strong login (for the cookie checks).
        running = broker.simulator("tara")
        assert running is not None
        step = broker.begin("tara", binding="b")
        assert isinstance(step, Redirect)
        done = broker.advance(step.flow_id, _browser(step.url), binding="b")
        assert isinstance(done, Done)
        run.identity("tara again", done)
        _session_flow(run, done)
    finally:
        broker.close()
    _direct_link_flow(run)
    _mobile_flow(run, tmp_path)
    _api_flow(run)

    # The run really exercised what it claims to (otherwise zero hits means nothing).
    labels = set(run.secrets.values())
    for needed in (
        "OTP",
        "password",
        "refresh token",
        "access token",
        "link token",
        "ftn verifier",
        "ftn authorization code",
        "provider id_token",
        "tupas CUSTID",
        "web-eid signature",
        "API signature",
    ):
        assert needed in labels, needed
    assert {c for c, _ in run.numbers} >= {"FI", "SE", "EE", "NO"}
    assert len(caplog.records) > 20
    assert len(run.sink.events) > 20

    texts = _captured_logs(caplog) + run.texts + [("audit", repr(run.sink.events))]
    hits = _hits(run, texts)
    assert hits == [], "\n".join(hits[:40])
