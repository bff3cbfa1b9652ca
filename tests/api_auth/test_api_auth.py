"""Signed API requests: the verifier's decisions, tampering, replay, time, access."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker.api_auth import (
    ALG_ECDSA_P256,
    ALG_ED25519,
    ALG_HMAC,
    ApiKey,
    ApiPrincipal,
    ApiSigner,
    ApiVerifier,
    CompanyDenied,
    DigestMismatch,
    HmacSecret,
    IntegrationCredential,
    KeyRevoked,
    MemoryKeyRegistry,
    Message,
    SignaturePolicy,
    UserInactive,
    content_digest,
    sign_message,
)
from authbroker.audit import AuditLog, MemorySink
from authbroker.errors import (
    AccessDenied,
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderUnavailable,
)
from authbroker.kernel import Call
from authbroker.store import AsyncStateStore, MemoryStore, StateStore
from authbroker.store.base import apply_sync

NOW = 1_760_000_000.0
COMPANY = "1234567-8"
OTHER_COMPANY = "7654321-0"
URL = "https://api.example.com/v1/invoices?year=2025"


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class RecordingStore:
    """Wraps a store and records writes, to assert that a refusal wrote nothing."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.writes.append(key)
        self.inner.put(key, value, ttl)

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def take(self, key: str) -> bytes | None:
        self.writes.append(key)
        return self.inner.take(key)

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        self.writes.append(key)
        return self.inner.put_if_absent(key, value, ttl)

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        self.writes.append(key)
        return self.inner.incr(key, ttl, amount)

    def delete(self, key: str) -> bool:
        self.writes.append(key)
        return self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()


@dataclass
class World:
    clock: Clock
    registry: MemoryKeyRegistry
    private: dict[str, Any]
    users: dict[str, bool] = field(default_factory=lambda: {"u-100": True, "u-200": True})
    memberships: set[tuple[str, str]] = field(default_factory=set)
    sink: MemorySink = field(default_factory=MemorySink)
    store: RecordingStore = field(default_factory=lambda: RecordingStore(MemoryStore()))
    policy: SignaturePolicy = field(default_factory=SignaturePolicy)

    def verifier(self, **overrides: Any) -> ApiVerifier:
        options: dict[str, Any] = {
            "keys": self.registry,
            "users": self.users.get,
            "companies": lambda cred, company: (cred.credential_id, company) in self.memberships,
            "policy": self.policy,
            "audit": AuditLog([self.sink]),
            "now": self.clock,
        }
        options.update(overrides)
        return ApiVerifier(**options)

    def verify(self, message: Message, **overrides: Any) -> ApiPrincipal:
        return self.verifier(**overrides).verify_sync(message, self.store)

    def signer(self, key_id: str = "k-ed", **options: Any) -> ApiSigner:
        options.setdefault("company", COMPANY)
        options.setdefault("now", self.clock)
        return ApiSigner(key_id, self.private[key_id], **options)

    def signed(
        self,
        method: str = "POST",
        url: str = URL,
        body: bytes = b'{"amount": 100}',
        key_id: str = "k-ed",
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> Message:
        request = httpx.Request(method, url, content=body or None, headers=headers)
        self.signer(key_id, **options).sign_request(request)
        return to_message(request)


def to_message(request: httpx.Request) -> Message:
    return Message(
        method=request.method,
        target_uri=str(request.url),
        headers=list(request.headers.items()),
        body=request.content,
    )


def make_world() -> World:
    clock = Clock()
    ed = ed25519.Ed25519PrivateKey.generate()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    secret = HmacSecret(b"s" * 16 + b"integration-secret-0123")
    registry = MemoryKeyRegistry(now=clock)
    registry.add_credential(IntegrationCredential("cred-1", "acme-erp", "u-100"))
    registry.add_credential(
        IntegrationCredential("cred-2", "beta-crm", "u-200", companies=frozenset({OTHER_COMPANY}))
    )
    registry.add_key(ApiKey("k-ed", "cred-1", ed.public_key()))
    registry.add_key(ApiKey("k-ec", "cred-1", ec_key.public_key()))
    registry.add_key(ApiKey("k-hmac", "cred-1", secret))
    other = ed25519.Ed25519PrivateKey.generate()
    registry.add_key(ApiKey("k-two", "cred-2", other.public_key()))
    world = World(
        clock=clock,
        registry=registry,
        private={"k-ed": ed, "k-ec": ec_key, "k-hmac": secret, "k-two": other},
    )
    world.memberships.add(("cred-1", COMPANY))
    return world


@pytest.fixture
def world() -> World:
    return make_world()


def with_header(message: Message, name: str, value: str | None) -> Message:
    headers = [(k, v) for k, v in message.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return replace(message, headers=headers)


def header(message: Message, name: str) -> str:
    value = message.header(name)
    assert value is not None
    return value


# --- happy paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_id", "algorithm"), [("k-ed", ALG_ED25519), ("k-ec", ALG_ECDSA_P256), ("k-hmac", ALG_HMAC)]
)
def test_each_algorithm_is_accepted(world: World, key_id: str, algorithm: str) -> None:
    message = world.signed(key_id=key_id)
    assert f'alg="{algorithm}"' in header(message, "signature-input")
    principal = world.verify(message)
    assert principal == ApiPrincipal(
        user_id="u-100",
        company_id=COMPANY,
        credential_id="cred-1",
        partner_id="acme-erp",
        key_id=key_id,
        algorithm=algorithm,
        label="sig1",
        created=int(NOW),
        expires=int(NOW) + 60,
    )
    assert world.sink.names() == ["api.authenticated"]
    event = world.sink.events[0].to_dict()
    assert event["subject"] == "u-100"
    assert event["details"] == {
        "label": "sig1",
        "kid": key_id,
        "credential": "cred-1",
        "partner": "acme-erp",
        "user": "u-100",
        "alg": algorithm,
        "company": COMPANY,
    }


def test_signer_covers_the_required_components(world: World) -> None:
    message = world.signed()
    signature_input = header(message, "signature-input")
    assert signature_input.startswith(
        'sig1=("@method" "@target-uri" "date" "x-company-id" "content-digest");created='
    )
    assert header(message, "content-digest") == content_digest(b'{"amount": 100}')
    assert header(message, "date") == "Thu, 09 Oct 2025 08:53:20 GMT"
    assert header(message, "x-company-id") == COMPANY


def test_get_without_body_needs_no_digest(world: World) -> None:
    message = world.signed("GET", body=b"")
    assert message.header("content-digest") is None
    assert world.verify(message).company_id == COMPANY


def test_sha512_digest_accepted(world: World) -> None:
    message = world.signed(digest="sha-512")
    assert header(message, "content-digest").startswith("sha-512=:")
    world.verify(message)


# --- tampering ----------------------------------------------------------------------------


def _swap_target(message: Message, new: str) -> Message:
    return replace(message, target_uri=new)


TAMPERING: dict[str, tuple[Callable[[Message], Message], type[AuthBrokerError], str]] = {
    "method": (lambda m: replace(m, method="PUT"), InvalidSignature, "bad_signature"),
    "path": (
        lambda m: _swap_target(m, m.target_uri.replace("/invoices", "/payments")),
        InvalidSignature,
        "bad_signature",
    ),
    "query": (
        lambda m: _swap_target(m, m.target_uri.replace("2025", "2024")),
        InvalidSignature,
        "bad_signature",
    ),
    "host": (
        lambda m: _swap_target(m, m.target_uri.replace("api.example.com", "api.example.org")),
        InvalidSignature,
        "bad_signature",
    ),
    "scheme": (
        lambda m: _swap_target(m, m.target_uri.replace("https:", "http:")),
        InvalidSignature,
        "bad_signature",
    ),
    "date": (
        lambda m: with_header(m, "Date", "Thu, 09 Oct 2025 08:53:21 GMT"),
        InvalidSignature,
        "bad_signature",
    ),
    "company": (
        lambda m: with_header(m, "x-company-id", OTHER_COMPANY),
        InvalidSignature,
        "bad_signature",
    ),
    "body": (lambda m: replace(m, body=b'{"amount": 900}'), DigestMismatch, "digest_mismatch"),
    "body-and-digest": (
        lambda m: with_header(
            replace(m, body=b'{"amount": 900}'),
            "Content-Digest",
            content_digest(b'{"amount": 900}'),
        ),
        InvalidSignature,
        "bad_signature",
    ),
    "digest-removed": (
        lambda m: with_header(m, "Content-Digest", None),
        InvalidInput,
        "missing_field",
    ),
    "company-removed": (
        lambda m: with_header(m, "x-company-id", None),
        InvalidInput,
        "missing_field",
    ),
    "signature-bits": (
        lambda m: with_header(
            m,
            "Signature",
            header(m, "signature")[:10]
            + ("A" if header(m, "signature")[10] != "A" else "B")
            + header(m, "signature")[11:],
        ),
        InvalidSignature,
        "bad_signature",
    ),
    "nonce": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace('nonce="', 'nonce="x')
        ),
        InvalidSignature,
        "bad_signature",
    ),
    "created": (
        lambda m: with_header(
            m,
            "Signature-Input",
            header(m, "signature-input").replace(f"created={int(NOW)}", f"created={int(NOW) - 1}"),
        ),
        InvalidSignature,
        "bad_signature",
    ),
    "expires": (
        lambda m: with_header(
            m,
            "Signature-Input",
            header(m, "signature-input").replace(
                f"expires={int(NOW) + 60}", f"expires={int(NOW) + 90}"
            ),
        ),
        InvalidSignature,
        "bad_signature",
    ),
    "keyid-to-other-key": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace('"k-ed"', '"k-ec"')
        ),
        InvalidSignature,
        "alg_mismatch",
    ),
    "alg-downgrade-to-hmac": (
        lambda m: with_header(
            m,
            "Signature-Input",
            header(m, "signature-input").replace('alg="ed25519"', 'alg="hmac-sha256"'),
        ),
        InvalidSignature,
        "alg_mismatch",
    ),
    "date-dropped-from-coverage": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace(' "date"', "")
        ),
        InvalidInput,
        "missing_component",
    ),
    "digest-dropped-from-coverage": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace(' "content-digest"', "")
        ),
        InvalidInput,
        "missing_component",
    ),
    "target-dropped-from-coverage": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace(' "@target-uri"', "")
        ),
        InvalidInput,
        "missing_component",
    ),
    "company-dropped-from-coverage": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace(' "x-company-id"', "")
        ),
        InvalidInput,
        "missing_component",
    ),
    "method-dropped-from-coverage": (
        lambda m: with_header(
            m, "Signature-Input", header(m, "signature-input").replace('"@method" ', "")
        ),
        InvalidInput,
        "missing_component",
    ),
    "signature-removed": (
        lambda m: with_header(m, "Signature", None),
        InvalidInput,
        "missing_signature",
    ),
    "label-mismatch": (
        lambda m: with_header(m, "Signature", header(m, "signature").replace("sig1=", "sig2=")),
        InvalidInput,
        "missing_signature",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_rejected_without_state(world: World, case: str) -> None:
    tamper, error, code = TAMPERING[case]
    original = world.signed()
    with pytest.raises(error) as info:
        world.verify(tamper(original))
    assert type(info.value) is error and info.value.code == code
    assert world.store.writes == []  # no nonce consumed by a forged request
    assert world.sink.names() == ["api.denied"]
    assert world.sink.events[0].reason == code
    # The untouched request still goes through once.
    assert world.verify(original).key_id == "k-ed"


def test_hmac_key_confusion_with_public_key_bytes(world: World) -> None:
    # API-01: an attacker signs with HMAC using the Ed25519 *public* key as the secret.
    public = (
        world.private["k-ed"]
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    request = httpx.Request("GET", URL, headers={"x-company-id": COMPANY})
    ApiSigner("k-ed", HmacSecret(public), company=COMPANY, now=world.clock).sign_request(request)
    with pytest.raises(InvalidSignature) as info:
        world.verify(to_message(request))
    assert info.value.code == "alg_mismatch"
    # Without the alg parameter, the key's own algorithm decides and the MAC fails.
    stripped = to_message(request)
    stripped = with_header(
        stripped,
        "Signature-Input",
        header(stripped, "signature-input").replace(';alg="hmac-sha256"', ""),
    )
    with pytest.raises(InvalidSignature) as info:
        world.verify(stripped)
    assert info.value.code == "bad_signature"


def test_signature_without_alg_uses_the_key_algorithm(world: World) -> None:
    request = httpx.Request("GET", URL, headers={"x-company-id": COMPANY})
    request.headers["Date"] = "Thu, 09 Oct 2025 08:53:20 GMT"
    message = to_message(request)
    signature_input, signature = sign_message(
        message,
        key_id="k-ec",
        key=world.private["k-ec"],
        components=("@method", "@target-uri", "date", "x-company-id"),
        created=int(NOW),
        include_alg=False,
    )
    signed = with_header(
        with_header(message, "Signature-Input", signature_input), "Signature", signature
    )
    assert "alg=" not in signature_input
    assert world.verify(signed).algorithm == ALG_ECDSA_P256


def test_wrong_tag_refused_when_policy_sets_one(world: World) -> None:
    world.policy = SignaturePolicy(tag="acme-api")
    with pytest.raises(InvalidInput) as info:
        world.verify(world.signed())
    assert info.value.code == "wrong_tag"
    assert world.verify(world.signed(tag="acme-api")).user_id == "u-100"


# --- replay -------------------------------------------------------------------------------


def test_replay_is_refused(world: World) -> None:
    message = world.signed()
    world.verify(message)
    with pytest.raises(AlreadyUsed) as info:
        world.verify(message)
    assert info.value.code == "nonce_replayed"
    assert world.sink.names() == ["api.authenticated", "api.denied"]


def test_concurrent_replay_exactly_one_accepted(sync_store: StateStore, store_backend: str) -> None:
    world = make_world()
    if store_backend == "redis":  # the Redis store keeps real time
        world.clock.t = __import__("time").time()
    verifier = world.verifier()
    message = world.signed()
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            verifier.verify_sync(message, sync_store)
            result = "ok"
        except AlreadyUsed:
            result = "replay"
        except Exception as exc:  # pragma: no cover - reported by the assertion
            result = repr(exc)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replay"] * 49


async def test_async_verifier_with_async_resolvers(
    async_store: AsyncStateStore, store_backend: str
) -> None:
    world = make_world()
    if store_backend == "redis":
        world.clock.t = __import__("time").time()

    async def keys(key_id: str) -> Any:
        await asyncio.sleep(0)
        return world.registry.resolve(key_id)

    async def users(user_id: str) -> bool | None:
        return world.users.get(user_id)

    async def companies(cred: IntegrationCredential, company: str) -> bool:
        return (cred.credential_id, company) in world.memberships

    verifier = world.verifier(keys=keys, users=users, companies=companies)
    message = world.signed()
    results = await asyncio.gather(
        *(verifier.verify_async(message, async_store) for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, ApiPrincipal) for r in results) == 1
    assert sum(isinstance(r, AlreadyUsed) for r in results) == 19


def test_async_resolver_refused_by_sync_verifier(world: World) -> None:
    async def users(user_id: str) -> bool:
        return True

    with pytest.raises(ConfigError):
        world.verify(world.signed(), users=users)


async def test_failing_async_resolver_is_a_typed_error_and_nonce_stays_spent(
    async_store: AsyncStateStore, store_backend: str
) -> None:
    """An async resolver's own failure is mapped like a sync one (503, audited) when
    the asyncio runtime awaits it; the nonce it was checked after stays consumed."""
    world = make_world()
    if store_backend == "redis":
        world.clock.t = __import__("time").time()

    async def users(user_id: str) -> bool:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    verifier = world.verifier(users=users)
    message = world.signed()
    with pytest.raises(ProviderUnavailable) as info:
        await verifier.verify_async(message, async_store)
    assert info.value.code == "resolver_failed"
    with pytest.raises(AlreadyUsed):
        await verifier.verify_async(message, async_store)
    first = world.sink.events[0]
    assert (first.name, first.reason) == ("api.denied", "resolver_failed")


def test_resolvers_are_kernel_call_effects(world: World) -> None:
    """The routine yields the kernel's ``Call`` for every resolver and nothing private,
    so any runtime (and the web core composing it) can carry it out."""
    routine = world.verifier().authenticate(world.signed())
    seen: list[str] = []
    effect = next(routine)
    store = MemoryStore(now=world.clock)
    try:
        while True:
            seen.append(type(effect).__name__)
            if isinstance(effect, Call):
                result = effect.fn(*effect.args, **effect.kwargs)
            else:
                result = apply_sync(store, effect)
            effect = routine.send(result)
    except StopIteration as stop:
        assert isinstance(stop.value, ApiPrincipal)
    assert seen == ["Call", "PutIfAbsent", "Call", "Call"]


def test_async_resolver_under_blocking_runtime_leaves_no_coroutine(world: World) -> None:
    async def users(user_id: str) -> bool:  # pragma: no cover - never awaited
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ConfigError) as info:
            world.verify(world.signed(), users=users)
        gc.collect()
    assert info.value.code == "async_resolver"


def test_failing_resolver_is_a_typed_error(world: World) -> None:
    def users(user_id: str) -> bool:
        raise RuntimeError("database down")

    with pytest.raises(ProviderUnavailable) as info:
        world.verify(world.signed(), users=users)
    assert info.value.code == "resolver_failed"


# --- time ---------------------------------------------------------------------------------


def test_expired_signature(world: World) -> None:
    message = world.signed()
    world.clock.t = NOW + 60 + 31
    with pytest.raises(Expired) as info:
        world.verify(message)
    assert info.value.code == "signature_expired"
    assert world.store.writes == []


def test_expiry_within_skew_is_accepted(world: World) -> None:
    message = world.signed()
    world.clock.t = NOW + 60 + 29
    world.verify(message)


def test_too_old_without_expires(world: World) -> None:
    message = world.signed(lifetime=3600)
    world.clock.t = NOW + 300 + 31
    with pytest.raises(Expired) as info:
        world.verify(message)
    assert info.value.code in {"signature_too_old", "stale_date"}


def test_created_in_the_future(world: World) -> None:
    message = world.signed()
    world.clock.t = NOW - 31
    with pytest.raises(InvalidInput) as info:
        world.verify(message)
    assert info.value.code == "created_in_future"


def test_stale_date_header_is_refused(world: World) -> None:
    # The Date window is checked before any key work (a fresh created, an old Date).
    message = with_header(world.signed("GET", body=b""), "Date", "Thu, 09 Oct 2025 08:46:00 GMT")
    with pytest.raises(Expired) as info:
        world.verify(message)
    assert info.value.code == "stale_date"
    assert world.store.writes == []


@pytest.mark.parametrize("value", ["yesterday", "Thu, 09 Oct 2099 08:53:20 GMT"])
def test_bad_or_future_date(world: World, value: str) -> None:
    message = with_header(world.signed(), "Date", value)
    with pytest.raises(InvalidInput) as info:
        world.verify(message)
    assert info.value.code == "bad_date"


def test_nonce_remembered_for_the_whole_window(world: World) -> None:
    store = MemoryStore(now=world.clock)
    verifier = world.verifier()
    message = world.signed()
    verifier.verify_sync(message, store)
    world.clock.t = NOW + 60 + 29  # still acceptable: the nonce must still be known
    with pytest.raises(AlreadyUsed):
        verifier.verify_sync(message, store)


# --- keys: unknown, revoked, rotated ------------------------------------------------------


def test_unknown_key(world: World) -> None:
    request = httpx.Request("GET", URL)
    ApiSigner("k-nope", world.private["k-ed"], company=COMPANY, now=world.clock).sign_request(
        request
    )
    with pytest.raises(InvalidSignature) as info:
        world.verify(to_message(request))
    assert info.value.code == "unknown_key"


def test_revoked_key(world: World) -> None:
    message = world.signed()
    world.registry.revoke_key("k-ed")
    with pytest.raises(KeyRevoked) as info:
        world.verify(message)
    assert info.value.code == "key_revoked"
    assert world.store.writes == []
    assert world.sink.events[0].to_dict()["details"]["credential"] == "cred-1"
    # The credential's other keys still work.
    world.verify(world.signed(key_id="k-ec"))


def test_revoked_credential(world: World) -> None:
    world.registry.revoke_credential("cred-1")
    for key_id in ("k-ed", "k-ec", "k-hmac"):
        with pytest.raises(KeyRevoked) as info:
            world.verify(world.signed(key_id=key_id))
        assert info.value.code == "credential_revoked"


def test_rotation_new_key_and_grace_period(world: World) -> None:
    new_private = ed25519.Ed25519PrivateKey.generate()
    world.private["k-ed-2025"] = new_private
    world.registry.rotate(
        ApiKey("k-ed-2025", "cred-1", new_private.public_key()), retire="k-ed", grace=120
    )
    assert world.verify(world.signed(key_id="k-ed-2025")).key_id == "k-ed-2025"
    assert world.verify(world.signed(key_id="k-ed")).key_id == "k-ed"  # within grace
    world.clock.t = NOW + 121
    with pytest.raises(Expired) as info:
        world.verify(world.signed(key_id="k-ed"))
    assert info.value.code == "key_expired"
    principal = world.verify(world.signed(key_id="k-ed-2025"))
    assert (principal.credential_id, principal.user_id) == ("cred-1", "u-100")
    assert {k.key_id for k in world.registry.keys_of("cred-1")} == {
        "k-ed",
        "k-ec",
        "k-hmac",
        "k-ed-2025",
    }


def test_registry_refuses_private_keys_and_duplicates(world: World) -> None:
    with pytest.raises(ConfigError):
        world.registry.add_key(ApiKey("k-x", "cred-1", world.private["k-ed"]))
    with pytest.raises(ConfigError):
        world.registry.add_key(ApiKey("k-ed", "cred-1", world.private["k-ed"].public_key()))
    with pytest.raises(ConfigError):
        world.registry.add_key(ApiKey("k-y", "cred-404", world.private["k-ed"].public_key()))
    with pytest.raises(ConfigError):
        HmacSecret(b"short")
    with pytest.raises(ConfigError):
        world.registry.add_key(
            ApiKey("k-p384", "cred-1", ec.generate_private_key(ec.SECP384R1()).public_key())
        )


# --- access: user and company -------------------------------------------------------------


def test_wrong_company(world: World) -> None:
    message = world.signed(company=OTHER_COMPANY)
    with pytest.raises(CompanyDenied) as info:
        world.verify(message)
    assert isinstance(info.value, AccessDenied) and info.value.code == "company_denied"
    event = world.sink.events[-1].to_dict()
    assert event["event"] == "api.denied" and event["reason"] == "company_denied"
    assert event["details"]["company"] == OTHER_COMPANY
    # The signed request was consumed: it cannot be retried into a different answer.
    with pytest.raises(AlreadyUsed):
        world.verify(message)


def test_static_company_set_is_checked_too(world: World) -> None:
    # cred-2 may act for OTHER_COMPANY by its static set, but the resolver must agree too.
    with pytest.raises(CompanyDenied):
        world.verify(world.signed(key_id="k-two", company=COMPANY))
    with pytest.raises(CompanyDenied):
        world.verify(world.signed(key_id="k-two", company=OTHER_COMPANY))
    world.memberships.add(("cred-2", OTHER_COMPANY))
    assert world.verify(world.signed(key_id="k-two", company=OTHER_COMPANY)).user_id == "u-200"
    # Without a resolver the static set alone decides.
    assert (
        world.verify(world.signed(key_id="k-two", company=OTHER_COMPANY), companies=None).company_id
        == OTHER_COMPANY
    )


def test_no_company_policy_denies(world: World) -> None:
    with pytest.raises(CompanyDenied) as info:
        world.verify(world.signed(), companies=None)
    assert info.value.code == "no_company_policy"


def test_inactive_user(world: World) -> None:
    world.users["u-100"] = False
    with pytest.raises(UserInactive) as info:
        world.verify(world.signed())
    assert info.value.code == "user_inactive" and isinstance(info.value, AccessDenied)
    assert not isinstance(info.value, CompanyDenied)


def test_unknown_user(world: World) -> None:
    del world.users["u-100"]
    with pytest.raises(UserInactive) as info:
        world.verify(world.signed())
    assert info.value.code == "user_unknown"


def test_company_header_must_be_single(world: World) -> None:
    message = world.signed()
    doubled = replace(message, headers=[*message.headers, ("x-company-id", OTHER_COMPANY)])
    with pytest.raises(InvalidInput):
        world.verify(doubled)


# --- shape limits and fuzzing -------------------------------------------------------------


def test_oversize_header_refused_before_parsing(world: World) -> None:
    message = with_header(world.signed(), "Signature-Input", "sig1=(" + '"a" ' * 5000 + ")")
    with pytest.raises(InvalidInput) as info:
        world.verify(message)
    assert info.value.code == "header_too_large"


def test_several_signatures_need_a_label(world: World) -> None:
    message = world.signed()
    extra = header(message, "signature-input") + ', proxy=();created=1;keyid="x"'
    doubled = with_header(
        with_header(message, "Signature-Input", extra),
        "Signature",
        header(message, "signature") + ", proxy=:AAAA:",
    )
    with pytest.raises(InvalidInput) as info:
        world.verify(doubled)
    assert info.value.code == "ambiguous_signature"
    world.policy = SignaturePolicy(label="sig1")
    assert world.verify(doubled).label == "sig1"


@pytest.mark.parametrize(
    ("signature_input", "code"),
    [
        ('sig1=("@method");keyid="k-ed";nonce="' + "n" * 20 + '"', "bad_parameter"),
        ('sig1=("@method");created=1760000000;nonce="' + "n" * 20 + '"', "bad_parameter"),
        ('sig1=("@method");created=1760000000;keyid="k-ed"', "bad_nonce"),
        ('sig1=("@method");created=1760000000;keyid="k-ed";nonce="short"', "bad_nonce"),
        (
            'sig1=("@method");created=1760000000;keyid=k-ed;nonce="' + "n" * 20 + '"',
            "bad_parameter",
        ),
        ('sig1=("@method");created="1";keyid="k-ed";nonce="' + "n" * 20 + '"', "bad_parameter"),
        (
            'sig1=("@method");created=1760000000;keyid="k";nonce="' + "n" * 20 + '";x=1',
            "bad_parameter",
        ),
        (
            'sig1=("@Method");created=1760000000;keyid="k";nonce="' + "n" * 20 + '"',
            "unsupported_component",
        ),
        ('sig1=("Date");created=1760000000;keyid="k";nonce="' + "n" * 20 + '"', "bad_component"),
        (
            'sig1=("date";req);created=1760000000;keyid="k";nonce="' + "n" * 20 + '"',
            "unsupported_component",
        ),
        ("sig1=:AAAA:", "bad_input"),
        ("sig1=(", "malformed_signature_input"),
    ],
)
def test_malformed_signature_input(world: World, signature_input: str, code: str) -> None:
    message = with_header(world.signed(), "Signature-Input", signature_input)
    with pytest.raises(InvalidInput) as info:
        world.verify(message)
    assert info.value.code == code
    assert world.store.writes == []


FUZZ_ALPHABET = st.sampled_from(list('sig1=()";:,* @-abcdkeynoctrxz0189AZ+/\\?\t\x00é'))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    signature_input=st.one_of(st.text(max_size=200), st.text(FUZZ_ALPHABET, max_size=120)),
    signature=st.one_of(st.text(max_size=120), st.text(FUZZ_ALPHABET, max_size=80)),
)
def test_fuzz_only_typed_errors(world: World, signature_input: str, signature: str) -> None:
    base = world.signed("GET", body=b"")
    message = with_header(
        with_header(base, "Signature-Input", signature_input), "Signature", signature
    )
    with pytest.raises(AuthBrokerError):
        world.verify(message)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(component=st.text(FUZZ_ALPHABET, max_size=30), value=st.text(max_size=40))
def test_fuzz_components_only_typed_errors(world: World, component: str, value: str) -> None:
    """Random covered components around a well-formed, validly shaped input."""
    nonce = "n" * 20
    base = with_header(world.signed("GET", body=b""), "x-fuzz", value)
    signature_input = (
        f'sig1=("@method" {component} "@target-uri" "date" "x-company-id");'
        f'created={int(NOW)};keyid="k-ed";nonce="{nonce}"'
    )
    message = with_header(base, "Signature-Input", signature_input)
    with pytest.raises(AuthBrokerError):
        world.verify(message)


def test_policy_validation() -> None:
    with pytest.raises(ConfigError):
        SignaturePolicy(company_header="X-Company")
    with pytest.raises(ConfigError):
        SignaturePolicy(max_skew=-1)
    with pytest.raises(ConfigError):
        SignaturePolicy(min_nonce_length=4)


def test_repr_and_errors_hold_no_secrets(world: World) -> None:
    signer = world.signer("k-hmac")
    assert "redacted" not in repr(signer) and "integration-secret" not in repr(signer)
    assert "integration-secret" not in repr(world.private["k-hmac"])
    message = world.signed()
    nonce = header(message, "signature-input").split('nonce="')[1].split('"')[0]
    world.verify(message)
    with pytest.raises(AlreadyUsed) as info:
        world.verify(message)
    for event in world.sink.events:
        assert nonce not in str(event.to_dict())
        assert header(message, "signature") not in str(event.to_dict())
    assert nonce not in str(info.value) and nonce not in repr(info.value)
