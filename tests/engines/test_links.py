"""Direct links with SMS codes: issue → open → SMS → verify, and every refusal.

Store-dependent behaviour runs on memory, SQLite and Redis (``sync_store`` /
``async_store``). Link and code expiry follow the clock given to ``DirectLinks``, so
time travel works on every store; rate-limit windows and cooldowns follow the
store's own clock and are tested on stores that share the test clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import itsdangerous
import pytest

from authbroker.audit import AuditLog, JsonLinesSink, MemorySink
from authbroker.config import Settings
from authbroker.engines.links import (
    LINK_SALT,
    AsyncDirectLinks,
    DirectLinks,
    LinkGrant,
    LinkLimits,
    OtpChallenge,
    links_options,
    user_ref,
)
from authbroker.errors import (
    AccessDenied,
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    InvalidSignature,
    Locked,
    ProviderUnavailable,
    RateLimited,
    ScopeDenied,
)
from authbroker.sms import GatewayApiSender, OutboxSender, RetryPolicy, SmsMessage
from authbroker.sms.base import SendGen
from authbroker.store.base import AsyncStateStore, StateStore
from authbroker.store.memory import MemoryStore
from authbroker.testing.simulators.sms_gateways import GatewayApiSimulator

SECRET = secrets.token_urlsafe(40)
OLD_SECRET = secrets.token_urlsafe(40)
PHONE = "+358401234567"
PHONE_NATIONAL = "040 1234567"
BASE = "https://app.example.fi"
SCOPE = "invoice:approve"
RESOURCE = "INV-2024-123"
IP = "203.0.113.7"
NO_COOLDOWN = LinkLimits(resend_cooldown=0, sends_per_link=50, sends_per_phone=50, sends_per_ip=50)


class Clock:
    def __init__(self, t: float = 1_750_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Env:
    """One DirectLinks with an outbox, an audit sink and a clock."""

    def __init__(
        self,
        store: StateStore,
        *,
        clock: Clock | None = None,
        limits: LinkLimits | None = None,
        secret_keys: list[str] | None = None,
        **kw: Any,
    ) -> None:
        self.clock = clock or Clock()
        self.outbox = OutboxSender()
        self.sink = MemorySink()
        self.store = store
        self.links = DirectLinks(
            store,
            kw.pop("sms", self.outbox),
            secret_keys=secret_keys or [SECRET],
            base_url=BASE,
            audit=AuditLog([self.sink]),
            clock=self.clock,
            limits=limits or LinkLimits(),
            **kw,
        )

    def issue(self, **kw: Any) -> str:
        args: dict[str, Any] = {
            "user_id": "user-1",
            "phone": PHONE,
            "scope": SCOPE,
            "resource": RESOURCE,
            "ttl": 3600,
        }
        args.update(kw)
        url = self.links.issue(**args)
        return url.rsplit("/", 1)[1]

    def code(self) -> str:
        last = self.outbox.last()
        assert last is not None
        code = last.code()
        assert code is not None
        return code

    def wrong(self) -> str:
        good = self.code()
        return f"{(int(good) + 1) % 10 ** len(good):0{len(good)}d}"

    def events(self, name: str, reason: str | None = None) -> int:
        return sum(
            1 for e in self.sink.events if e.name == name and (reason is None or e.reason == reason)
        )


@pytest.fixture
def mem() -> Iterator[Env]:
    clock = Clock()
    env = Env(MemoryStore(now=clock), clock=clock)
    yield env
    env.store.close()


def snapshot(store: MemoryStore) -> dict[str, bytes]:
    return {k: v for k, (v, _) in store._data.items()}


# --- issuing --------------------------------------------------------------------------


def test_issue_url_and_payload_has_no_personal_data(mem: Env) -> None:
    url = mem.links.issue("user-1", PHONE_NATIONAL, SCOPE, RESOURCE, 3600)
    assert url.startswith(f"{BASE}/auth/link/")
    token = url.rsplit("/", 1)[1]
    payload_b64 = token.split(".")[0]
    payload = base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
    link_id = json.loads(payload)
    assert isinstance(link_id, str) and len(link_id) == 43  # 256 random bits
    for private in ("user-1", "401234567", SCOPE, RESOURCE):
        assert private not in payload.decode()
        assert private not in url
    assert mem.links.link_id(token) == link_id


def test_issued_link_record_holds_normalized_number(mem: Env) -> None:
    token = mem.issue(phone=PHONE_NATIONAL)
    mem.links.open(token, IP)
    assert mem.outbox.last() is not None and mem.outbox.last().to == PHONE  # type: ignore[union-attr]
    assert mem.events("link.issued") == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"phone": "+358 9 1234567"}, "phone_not_mobile"),  # landline
        ({"phone": "+12025550123"}, "phone_region"),
        ({"phone": "+4534412345"}, "phone_region"),  # DK not on the default list
        ({"phone": "not a number"}, "bad_phone"),
        ({"phone": "+358 40 123"}, "bad_phone"),
        ({"scope": "Invoice Approve"}, "bad_scope"),
        ({"scope": ""}, "bad_scope"),
        ({"resource": ""}, "bad_resource"),
        ({"resource": "1\r\n2"}, "bad_resource"),
        ({"user_id": ""}, "bad_user_id"),
        ({"ttl": 10}, "bad_ttl"),
        ({"ttl": 365 * 86400}, "bad_ttl"),
        ({"ttl": True}, "bad_ttl"),
        ({"language": "de"}, "bad_language"),
    ],
)
def test_issue_refuses_bad_input_without_writing(
    mem: Env, kwargs: dict[str, Any], code: str
) -> None:
    assert isinstance(mem.store, MemoryStore)
    before = snapshot(mem.store)
    with pytest.raises(InvalidInput) as err:
        mem.issue(**kwargs)
    assert err.value.code == code
    assert snapshot(mem.store) == before
    assert mem.sink.events == []


def test_other_regions_can_be_allowed() -> None:
    env = Env(MemoryStore(), allowed_regions=["DK", "FI"])
    token = env.issue(phone="+4534412345")
    env.links.open(token, IP)
    assert env.outbox.last().to == "+4534412345"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "keys",
    [[], ["short-secret"], [SECRET, "x" * 31], "a-single-string-is-not-a-list-of-keys-at-all"],
)
def test_short_or_missing_secrets_refused(keys: Any) -> None:
    with pytest.raises(ConfigError):
        DirectLinks(MemoryStore(), OutboxSender(), secret_keys=keys, base_url=BASE)


def test_bad_base_url_refused() -> None:
    with pytest.raises(ConfigError):
        DirectLinks(MemoryStore(), OutboxSender(), secret_keys=[SECRET], base_url="app.example")


def test_limits_validation_and_attacker_budget() -> None:
    assert LinkLimits().guess_probability() <= 1e-5  # R-15 target
    assert LinkLimits(code_digits=8, max_failures_per_link=100).guess_probability() == 1e-6
    for bad in (
        {"code_digits": 5},
        {"code_ttl": 601},
        {"max_attempts_per_challenge": 11},
        {"max_failures_per_link": 101},
        {"sends_per_link": 0},
        {"send_window": 0},
        {"resend_cooldown": -1},
        {"code_ttl": "300"},
    ):
        with pytest.raises(ConfigError):
            LinkLimits(**bad)
    assert LinkLimits.from_mapping({"code_ttl": 120}).code_ttl == 120
    with pytest.raises(ConfigError):
        LinkLimits.from_mapping({"cooldown": 5})


# --- the whole flow on every store -----------------------------------------------


def test_full_flow_on_every_store(sync_store: StateStore) -> None:
    env = Env(sync_store)
    token = env.issue()
    challenge = env.links.open(token, IP)
    assert isinstance(challenge, OtpChallenge)
    assert challenge.masked_phone == "+358******67"
    assert challenge.expires_at == env.clock() + 300
    assert challenge.resend_after == env.clock() + 30
    message = env.outbox.last()
    assert message is not None and message.host() == "app.example.fi"
    code = env.code()
    assert len(code) == 6 and code.isdigit()
    grant = env.links.verify(challenge.challenge_id, code, client_ip=IP)
    assert isinstance(grant, LinkGrant)
    assert (grant.user_id, grant.scope, grant.resource) == ("user-1", SCOPE, RESOURCE)
    assert grant.expires_at == env.clock() + 15 * 60
    assert grant.link_id == env.links.link_id(token)
    # The grant covers exactly this scope and resource.
    now = env.clock()
    assert grant.allows(SCOPE, RESOURCE, now=now)
    assert not grant.allows(SCOPE, "INV-2024-124", now=now)
    assert not grant.allows("invoice:pay", RESOURCE, now=now)
    assert not grant.allows(SCOPE, RESOURCE, now=grant.expires_at)
    with pytest.raises(ScopeDenied):
        grant.require("hours:enter", RESOURCE, now=now)
    with pytest.raises(Expired):
        grant.require(SCOPE, RESOURCE, now=grant.expires_at + 1)
    grant.require(SCOPE, RESOURCE, now=now)
    # Accepted once (OTP-02).
    with pytest.raises(AlreadyUsed):
        env.links.verify(challenge.challenge_id, code)
    assert [e.name for e in env.sink.events] == [
        "link.issued",
        "link.opened",
        "otp.sent",
        "otp.verified",
        "otp.failed",
    ]


async def test_full_flow_async_on_every_store(async_store: AsyncStateStore) -> None:
    clock = Clock()
    outbox = OutboxSender()
    sink = MemorySink()
    links = AsyncDirectLinks(
        async_store,
        outbox,
        secret_keys=[SECRET],
        base_url=BASE,
        audit=AuditLog([sink]),
        clock=clock,
    )
    url = await links.issue("user-2", PHONE, "hours:enter", "2024-W10", 3600, language="sv")
    token = url.rsplit("/", 1)[1]
    challenge = await links.open(token, IP)
    message = outbox.last()
    assert message is not None and "engångskod" in message.body
    code = message.code()
    assert code is not None
    with pytest.raises(InvalidInput):
        await links.verify(challenge.challenge_id, f"{(int(code) + 1) % 10**6:06d}")
    link_id = links.link_id(token)
    assert await links.link_failures(link_id) == 1
    grant = await links.verify(challenge.challenge_id, code)
    assert grant.scope == "hours:enter" and grant.resource == "2024-W10"
    assert await links.link_failures(link_id) == 0  # success clears (OTP-04)
    assert await links.revoke(link_id) is True
    with pytest.raises(AccessDenied):
        await links.open(token, IP)
    await links.aclose()


def test_code_is_zero_padded_and_only_a_hash_is_stored(
    mem: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("authbroker.engines.links.engine.secrets.randbelow", lambda n: 42)
    token = mem.issue()
    challenge = mem.links.open(token, IP)
    assert mem.code() == "000042"
    assert isinstance(mem.store, MemoryStore)
    dump = b"".join(k.encode() + v for k, v in snapshot(mem.store).items())
    assert b"000042" not in dump  # OTP-01: no code at rest
    assert mem.links.verify(challenge.challenge_id, "000042").resource == RESOURCE


def test_code_entry_tolerates_spaces_but_not_garbage(mem: Env) -> None:
    challenge = mem.links.open(mem.issue(), IP)
    code = mem.code()
    for bad in ("12345", "1234567", "abcdef", "１２３４５６", ""):
        with pytest.raises(InvalidInput) as err:
            mem.links.verify(challenge.challenge_id, bad)
        assert err.value.code == "otp_malformed"
    # Malformed entries are typos, not guesses: nothing counted.
    assert mem.links.challenge_attempts(challenge.challenge_id) == 0
    spaced = f" {code[:3]} {code[3:]} "
    assert mem.links.verify(challenge.challenge_id, spaced).scope == SCOPE


# --- expiry (injected clock; runs on every store) --------------------------------


def test_code_expires(sync_store: StateStore) -> None:
    env = Env(sync_store)
    challenge = env.links.open(env.issue(), IP)
    code = env.code()
    env.clock.advance(301)
    with pytest.raises(Expired) as err:
        env.links.verify(challenge.challenge_id, code)
    assert err.value.code == "otp_expired"
    assert env.links.challenge_attempts(challenge.challenge_id) == 0


def test_link_expires(sync_store: StateStore) -> None:
    env = Env(sync_store)
    token = env.issue(ttl=600)
    env.clock.advance(601)
    with pytest.raises(Expired) as err:
        env.links.open(token, IP)
    assert err.value.code == "link_expired"
    assert len(env.outbox) == 0


def test_link_expiry_also_ends_pending_codes(mem: Env) -> None:
    challenge = mem.links.open(mem.issue(ttl=120), IP)
    code = mem.code()
    mem.clock.advance(121)  # code would live 300 s, the link only 120 s
    with pytest.raises(Expired):
        mem.links.verify(challenge.challenge_id, code)


def test_token_older_than_max_link_ttl_is_expired_by_signature() -> None:
    clock = Clock()
    store = MemoryStore(now=clock)
    env = Env(store, clock=clock, limits=LinkLimits(max_link_ttl=3600))
    token = env.issue(ttl=3600)
    clock.advance(3602)
    with pytest.raises(Expired):
        env.links.link_id(token)


def test_token_from_the_future_is_refused(mem: Env) -> None:
    token = mem.issue()
    mem.clock.advance(-120)
    with pytest.raises(InvalidSignature):
        mem.links.open(token, IP)


# --- tampering and keys ---------------------------------------------------------------


def _flip(token: str, index: int) -> str:
    ch = token[index]
    return token[:index] + ("A" if ch != "A" else "B") + token[index + 1 :]


@pytest.mark.parametrize("where", ["payload", "timestamp", "signature"])
def test_tampered_token_refused(mem: Env, where: str) -> None:
    token = mem.issue()
    payload, stamp, _sig = token.split(".")
    index = {"payload": 3, "timestamp": len(payload) + 2, "signature": len(token) - 5}[where]
    assert stamp
    with pytest.raises(InvalidSignature):
        mem.links.open(_flip(token, index), IP)
    assert len(mem.outbox) == 0
    assert mem.events("link.opened", "link_invalid") == 1


def test_non_canonical_spelling_of_a_valid_token_refused(mem: Env) -> None:
    """The spare bits of the signature's last base64 character: other spellings decode
    to the same signature, yet only the issued spelling is a link."""
    token = mem.issue()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]  # flips one of the two spare bits
    sig = token.rsplit(".", 1)[1]
    pad = "=" * (-len(sig) % 4)
    assert base64.urlsafe_b64decode(sig + pad) == base64.urlsafe_b64decode(
        twin.rsplit(".", 1)[1] + pad
    )
    with pytest.raises(InvalidSignature):
        mem.links.open(twin, IP)
    assert len(mem.outbox) == 0
    mem.links.open(token, IP)  # the real spelling still works


@pytest.mark.parametrize("bad", ["", "x", "a.b.c", "." * 600, None])
def test_malformed_token_refused(mem: Env, bad: Any) -> None:
    with pytest.raises(InvalidSignature):
        mem.links.open(bad, IP)


def test_token_for_another_purpose_refused(mem: Env) -> None:
    link_id = mem.links.link_id(mem.issue())
    for salt in ("authbroker.session.v1", "itsdangerous", "authbroker.link.v2"):
        forged = itsdangerous.URLSafeTimedSerializer(
            [SECRET], salt=salt, signer_kwargs={"digest_method": hashlib.sha256}
        ).dumps(link_id)
        with pytest.raises(InvalidSignature):
            mem.links.open(forged, IP)
    assert len(mem.outbox) == 0


def test_token_signed_with_another_secret_refused(mem: Env) -> None:
    other = Env(mem.store, clock=mem.clock, secret_keys=[secrets.token_urlsafe(40)])
    token = other.issue()
    with pytest.raises(InvalidSignature):
        mem.links.open(token, IP)


def test_secret_rotation(mem: Env) -> None:
    old = Env(mem.store, clock=mem.clock, secret_keys=[OLD_SECRET])
    token = old.issue()
    challenge = old.links.open(token, IP, binding="cookie")
    code = old.code()
    # Rotate: the new key signs, the old one still verifies links, pending codes and
    # their browser binding.
    rotated = Env(mem.store, clock=mem.clock, secret_keys=[SECRET, OLD_SECRET])
    with pytest.raises(InvalidInput):
        rotated.links.verify(challenge.challenge_id, code, binding="other")
    assert rotated.links.verify(challenge.challenge_id, code, binding="cookie").scope == SCOPE
    rotated.links.link_id(token)
    new_token = rotated.issue()
    with pytest.raises(InvalidSignature):
        old.links.link_id(new_token)
    # Retire the old key: its links stop working.
    retired = Env(mem.store, clock=mem.clock, secret_keys=[SECRET])
    with pytest.raises(InvalidSignature):
        retired.links.open(token, IP)
    retired.links.link_id(new_token)


# --- revocation -----------------------------------------------------------------------


def test_revoke_one_link(sync_store: StateStore) -> None:
    env = Env(sync_store, limits=NO_COOLDOWN)
    token = env.issue()
    other = env.issue()
    challenge = env.links.open(token, IP)
    code = env.code()
    assert env.links.revoke(env.links.link_id(token)) is True
    with pytest.raises(AccessDenied) as err:
        env.links.open(token, IP)
    assert err.value.code == "link_revoked"
    # The pending code dies with the link.
    with pytest.raises(FlowNotFound):
        env.links.verify(challenge.challenge_id, code)
    assert env.links.revoke(env.links.link_id(token)) is False
    env.links.open(other, IP)  # other links of the user are untouched
    assert env.events("link.revoked") == 2


def test_revoke_all_links_of_a_user(sync_store: StateStore) -> None:
    env = Env(sync_store, limits=NO_COOLDOWN)
    first = env.issue()
    second = env.issue(resource="INV-9")
    someone_else = env.issue(user_id="user-2", phone="+358401234560")
    challenge = env.links.open(first, IP)
    code = env.code()
    env.links.revoke_user("user-1")
    for token in (first, second):
        with pytest.raises(AccessDenied):
            env.links.open(token, IP)
    with pytest.raises(AccessDenied):
        env.links.verify(challenge.challenge_id, code)
    env.links.open(someone_else, IP)
    fresh = env.issue()  # links issued after the revocation work
    fresh_challenge = env.links.open(fresh, IP)
    assert env.links.verify(fresh_challenge.challenge_id, env.code()).user_id == "user-1"


def test_revoke_rejects_garbage_id(mem: Env) -> None:
    with pytest.raises(InvalidInput):
        mem.links.revoke("../../etc")


# --- single use, binding, superseded codes ----------------------------------------


def test_single_use_link(sync_store: StateStore) -> None:
    env = Env(sync_store, limits=NO_COOLDOWN)
    token = env.issue(single_use=True)
    first = env.links.open(token, IP)
    second = env.links.open(token, IP)  # resend before use is fine
    with pytest.raises(FlowNotFound):
        env.links.verify(first.challenge_id, env.code())
    env.links.verify(second.challenge_id, env.code())
    with pytest.raises(AlreadyUsed) as err:
        env.links.open(token, IP)
    assert err.value.code == "link_used"
    assert len(env.outbox) == 2


def test_multi_use_link_can_be_used_again(mem: Env) -> None:
    env = Env(mem.store, clock=mem.clock, limits=NO_COOLDOWN)
    token = env.issue()
    for _ in range(2):
        challenge = env.links.open(token, IP)
        env.links.verify(challenge.challenge_id, env.code())
    assert env.events("otp.verified") == 2


def test_browser_binding(mem: Env) -> None:
    challenge = mem.links.open(mem.issue(), IP, binding="cookie-of-browser-a")
    code = mem.code()
    for other in ("cookie-of-browser-b", None):
        with pytest.raises(InvalidInput) as err:
            mem.links.verify(challenge.challenge_id, code, binding=other)
        assert err.value.code == "challenge_binding"
    # Another browser cannot even burn attempts.
    assert mem.links.challenge_attempts(challenge.challenge_id) == 0
    grant = mem.links.verify(challenge.challenge_id, code, binding="cookie-of-browser-a")
    assert grant.scope == SCOPE


def test_new_code_supersedes_the_old_one(sync_store: StateStore) -> None:
    env = Env(sync_store, limits=NO_COOLDOWN)
    token = env.issue()
    first = env.links.open(token, IP)
    old_code = env.code()
    second = env.links.open(token, IP)
    new_code = env.code()
    with pytest.raises(FlowNotFound):
        env.links.verify(first.challenge_id, old_code)
    if old_code != new_code:  # 1e-6 chance they are equal
        with pytest.raises(InvalidInput):
            env.links.verify(second.challenge_id, old_code)
    assert env.links.verify(second.challenge_id, new_code).scope == SCOPE


def test_code_of_one_challenge_never_opens_another(mem: Env) -> None:
    env = Env(mem.store, clock=mem.clock, limits=NO_COOLDOWN)
    a = env.links.open(env.issue(), IP)
    code_a = env.code()
    b = env.links.open(env.issue(resource="INV-2"), IP)
    code_b = env.code()
    if code_a != code_b:
        with pytest.raises(InvalidInput):
            env.links.verify(b.challenge_id, code_a)
    assert env.links.verify(a.challenge_id, code_a).resource == RESOURCE


def test_resend_by_challenge_id(mem: Env) -> None:
    first = mem.links.open(mem.issue(), IP, binding="b1")
    with pytest.raises(RateLimited):
        mem.links.resend(first.challenge_id, IP, binding="b1")
    mem.clock.advance(31)
    second = mem.links.resend(first.challenge_id, IP, binding="b1")
    assert second.challenge_id != first.challenge_id
    assert len(mem.outbox) == 2
    with pytest.raises(InvalidInput):
        mem.links.resend(second.challenge_id, IP, binding="someone-else")
    mem.clock.advance(301)  # the code expired; the page can still ask for a new one
    third = mem.links.resend(second.challenge_id, IP, binding="b1")
    assert mem.links.verify(third.challenge_id, mem.code(), binding="b1").scope == SCOPE


def test_unknown_challenge(mem: Env) -> None:
    for bad in ("nope", "A" * 43, None):
        with pytest.raises(FlowNotFound):
            mem.links.verify(bad, "123456")  # type: ignore[arg-type]


# --- failure counting -------------------------------------------------------------


def test_challenge_locks_after_five_wrong_codes(sync_store: StateStore) -> None:
    env = Env(sync_store)
    challenge = env.links.open(env.issue(), IP)
    for _ in range(4):
        with pytest.raises(InvalidInput) as err:
            env.links.verify(challenge.challenge_id, env.wrong())
        assert err.value.code == "otp_wrong"
    with pytest.raises(Locked) as locked:
        env.links.verify(challenge.challenge_id, env.wrong())
    assert locked.value.code == "challenge_locked"
    with pytest.raises(Locked):
        env.links.verify(challenge.challenge_id, env.code())  # right code, too late
    assert env.links.challenge_attempts(challenge.challenge_id) == 5
    assert env.events("otp.failed", "otp_wrong") == 5
    assert env.events("otp.verified") == 0


def test_resend_does_not_reset_guessing_r06(sync_store: StateStore) -> None:
    """R-06 / OTP-04: wrong ×4, resend, wrong ×N → lock at the per-link limit (10)."""
    env = Env(sync_store, limits=NO_COOLDOWN)
    token = env.issue()
    link_id = env.links.link_id(token)
    wrong_total = 0
    challenge = env.links.open(token, IP)
    for _ in range(4):
        with pytest.raises(InvalidInput):
            env.links.verify(challenge.challenge_id, env.wrong())
        wrong_total += 1
    locked_at = None
    while locked_at is None and wrong_total < 30:
        challenge = env.links.open(token, IP)  # fresh code, fresh per-challenge budget
        for _ in range(5):
            try:
                env.links.verify(challenge.challenge_id, env.wrong())
            except Locked as exc:
                wrong_total += 1
                if exc.code == "link_locked":
                    locked_at = wrong_total
                    break
                break  # challenge locked: resend
            except InvalidInput:
                wrong_total += 1
    assert locked_at == 10
    assert env.links.link_failures(link_id) == 10
    sent = len(env.outbox)
    with pytest.raises(Locked) as err:
        env.links.open(token, IP)  # no more SMS for a locked link
    assert err.value.code == "link_locked"
    assert len(env.outbox) == sent
    with pytest.raises(Locked):
        env.links.verify(challenge.challenge_id, env.code())


def test_success_clears_the_link_counter(mem: Env) -> None:
    env = Env(mem.store, clock=mem.clock, limits=NO_COOLDOWN)
    token = env.issue()
    link_id = env.links.link_id(token)
    challenge = env.links.open(token, IP)
    for _ in range(3):
        with pytest.raises(InvalidInput):
            env.links.verify(challenge.challenge_id, env.wrong())
    assert env.links.link_failures(link_id) == 3
    env.links.verify(challenge.challenge_id, env.code())
    assert env.links.link_failures(link_id) == 0


def test_per_user_failure_limit_spans_links() -> None:
    clock = Clock()
    env = Env(
        MemoryStore(now=clock),
        clock=clock,
        limits=LinkLimits(
            resend_cooldown=0,
            max_failures_per_user=6,
            sends_per_phone=50,
            sends_per_link=50,
            sends_per_ip=50,
        ),
    )
    tokens = [env.issue(resource=f"INV-{i}") for i in range(3)]
    for token in tokens[:2]:
        challenge = env.links.open(token, IP)
        for _ in range(3):
            with pytest.raises(InvalidInput):
                env.links.verify(challenge.challenge_id, env.wrong())
    with pytest.raises(Locked) as err:
        env.links.open(tokens[2], IP)
    assert err.value.code == "user_locked"


# --- sending limits (store clock = test clock: memory) ---------------------------


def test_cooldown_between_sends() -> None:
    clock = Clock()
    env = Env(MemoryStore(now=clock), clock=clock)
    token = env.issue()
    env.links.open(token, IP)
    clock.advance(10)
    with pytest.raises(RateLimited) as err:
        env.links.open(token, IP)
    assert err.value.code == "sms_cooldown"
    assert err.value.retry_after == pytest.approx(20.0)
    assert len(env.outbox) == 1
    clock.advance(21)
    env.links.open(token, IP)
    assert len(env.outbox) == 2


@pytest.mark.parametrize("dimension", ["link", "phone", "ip", "global"])
def test_send_caps(dimension: str) -> None:
    clock = Clock()
    caps = {"sends_per_link": 50, "sends_per_phone": 50, "sends_per_ip": 50}
    if dimension == "global":
        limits = LinkLimits(resend_cooldown=0, global_daily_sends=3, **caps)
    else:
        caps[f"sends_per_{dimension}"] = 3
        limits = LinkLimits(resend_cooldown=0, **caps)
    env = Env(MemoryStore(now=clock), clock=clock, limits=limits)
    phones = [f"+35840123456{i}" for i in range(5)]

    def open_one(i: int) -> OtpChallenge:
        if dimension == "link":
            return env.links.open(tokens[0], f"198.51.100.{i}")
        if dimension == "phone":
            return env.links.open(tokens[i], f"198.51.100.{i}")
        if dimension == "ip":
            return env.links.open(tokens[i], IP)
        return env.links.open(tokens[i], f"198.51.100.{i}")

    same_phone = dimension in ("link", "phone")
    tokens = [
        env.issue(user_id=f"user-{i}", phone=PHONE if same_phone else phones[i], ttl=7200)
        for i in range(5)
    ]
    for i in range(3):
        open_one(i)
    with pytest.raises(RateLimited) as err:
        open_one(3)
    assert err.value.code == f"sms_cap_{dimension}"
    assert len(env.outbox) == 3
    if dimension != "global":
        clock.advance(3601)  # the window ends
        open_one(4)
        assert len(env.outbox) == 4


def test_destination_allow_list_checked_again_at_send(mem: Env) -> None:
    wide = Env(mem.store, clock=mem.clock, allowed_regions=["FI", "SE", "DK"])
    token = wide.issue(phone="+4534412345")
    with pytest.raises(AccessDenied) as err:
        mem.links.open(token, IP)  # this deployment no longer sends to DK
    assert err.value.code == "phone_region"
    assert len(mem.outbox) == 0


def test_send_veto_hook(mem: Env) -> None:
    seen: list[tuple[str, str]] = []

    def veto(user_id: str, phone: str) -> bool:
        seen.append((user_id, phone))
        return True  # e.g. the SIM was swapped yesterday

    env = Env(mem.store, clock=mem.clock, send_veto=veto)
    with pytest.raises(AccessDenied) as err:
        env.links.open(env.issue(), IP)
    assert err.value.code == "send_vetoed"
    assert seen == [("user-1", PHONE)]
    assert len(env.outbox) == 0


class FailingSender:
    name = "broken"

    def send(self, message: SmsMessage) -> SendGen:
        raise ProviderUnavailable("gateway down", code="sms_unavailable")
        yield  # pragma: no cover


def test_sms_failure_withdraws_the_challenge(mem: Env) -> None:
    env = Env(mem.store, clock=mem.clock, sms=FailingSender())
    token = env.issue()
    with pytest.raises(ProviderUnavailable):
        env.links.open(token, IP)
    assert env.events("sms.failed", "sms_unavailable") == 1
    assert env.events("otp.sent") == 0
    assert isinstance(mem.store, MemoryStore)
    assert not any(k.startswith("otp:ch:") for k in snapshot(mem.store))


def test_open_through_a_real_http_gateway(mem: Env) -> None:
    sim = GatewayApiSimulator()
    with sim:
        sender = GatewayApiSender(
            token=sim.token,
            sender="Acme",
            base_url=sim.url,
            retry=RetryPolicy(base_delay=0, max_delay=0),
        )
        env = Env(mem.store, clock=mem.clock, sms=sender)
        sim.fail_next(429, retry_after="0")
        token = env.issue(language="et")
        challenge = env.links.open(token, IP)
        assert len(sim.accepted) == 1 and sim.request_count == 2
        body = sim.accepted[0].body
        assert "ühekordne" in body and sim.accepted[0].to == PHONE
        code = body.rsplit("#", 1)[1]
        assert env.links.verify(challenge.challenge_id, code).scope == SCOPE
        sim.fail_next(500)
        env.clock.advance(31)
        with pytest.raises(ProviderUnavailable):
            env.links.open(token, IP)
        assert env.events("sms.failed", "sms_ambiguous") == 1
        assert sim.request_count == 3  # the ambiguous 500 was not retried
        env.links.close()


# --- log hygiene (R-13) ---------------------------------------------------------------


def test_no_code_token_or_phone_in_logs_events_errors_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    memory = MemorySink()
    audit = AuditLog([memory, JsonLinesSink()])
    outbox = OutboxSender()
    links = DirectLinks(
        MemoryStore(now=clock),
        outbox,
        secret_keys=[SECRET],
        base_url=BASE,
        audit=audit,
        clock=clock,
        limits=LinkLimits(resend_cooldown=0),
    )
    seen: list[str] = []
    url = links.issue("user-1", PHONE_NATIONAL, SCOPE, RESOURCE, 3600)
    token = url.rsplit("/", 1)[1]
    issued = links.issue_link("user-1", PHONE, SCOPE, "R-2", 3600, single_use=True)
    seen += [repr(issued), repr(links)]
    codes: list[str] = []

    def attempt(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            result = fn(*args, **kw)
        except AuthBrokerError as exc:
            seen.extend([str(exc), repr(exc), json.dumps(dict(exc.details), default=str)])
            return None
        seen.append(repr(result))
        return result

    challenge = attempt(links.open, token, IP)
    codes.append(str(outbox.last().code()))  # type: ignore[union-attr]
    attempt(links.verify, challenge.challenge_id, "000000" if codes[0] != "000000" else "111111")
    attempt(links.open, _flip(token, 3), IP)
    attempt(links.verify, challenge.challenge_id, codes[0])
    attempt(links.verify, challenge.challenge_id, codes[0])
    challenge2 = attempt(links.open, token, IP)
    codes.append(str(outbox.last().code()))  # type: ignore[union-attr]
    links.revoke(links.link_id(token))
    attempt(links.verify, challenge2.challenge_id, codes[1])
    attempt(links.open, token, IP)
    seen += [repr(m) for m in outbox.messages]
    seen += [json.dumps(e.to_dict()) for e in memory.events]
    seen.append(caplog.text)
    haystack = "\n".join(seen)
    assert "otp.verified" in haystack and "link.revoked" in haystack  # the run happened
    needles = [*codes, token, url, issued.url, issued.url.rsplit("/", 1)[1], SECRET]
    needles += [PHONE, PHONE[1:], "401234567", PHONE_NATIONAL, "0401234567"]
    for needle in needles:
        assert needle not in haystack, "secret or personal value leaked"
    # Audit subjects are pseudonyms that operators can recompute.
    assert user_ref("user-1") in haystack and "user-1" not in haystack
    assert challenge.challenge_id not in haystack


def test_link_salt_is_purpose_specific() -> None:
    assert LINK_SALT == "authbroker.link.v1"


def test_options_from_settings() -> None:
    settings = Settings(
        base_url="https://kirjanpito.example",
        route_prefix="/auth",
        secret_keys=(SECRET,),
        raw={"links": {"code_ttl": 120, "service_name": "Kirjanpito", "allowed_regions": ["FI"]}},
    )
    options = links_options(settings)
    assert options["limits"].code_ttl == 120
    links = DirectLinks(MemoryStore(), OutboxSender(), **options)
    url = links.issue("u", PHONE, SCOPE, RESOURCE, 3600)
    assert url.startswith("https://kirjanpito.example/auth/link/")
    with pytest.raises(InvalidInput):
        links.issue("u", "+46701234567", SCOPE, RESOURCE, 3600)  # SE not allowed here
    for bad in ({"allowed_regions": "FI"}, {"cooldown": 1}):
        with pytest.raises(ConfigError):
            links_options(Settings(secret_keys=(SECRET,), raw={"links": bad}))
