"""Challenge ids (:mod:`authbroker.engines.links.challenges`) as an attacker sees them.

A verify builds its one store program from the id, so the id must be unforgeable and
strictly parsed: any alteration, another secret's signature, an old-format id or a
binding from another browser is refused with a typed error before the store is
asked anything, and nothing is counted.
"""

from __future__ import annotations

import secrets
import string

import pytest
from test_links_concurrency import BASE, IP, PHONE, SECRET, tok, wrong_of
from test_sessions_one_trip import Counting

from authbroker.engines.links import DirectLinks, LinkLimits
from authbroker.engines.links.challenges import parse_challenge_id
from authbroker.engines.links.tokens import LinkKeys
from authbroker.errors import Expired, FlowNotFound, InvalidInput
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import MemoryStore

B64 = string.ascii_letters + string.digits + "-_"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        return self.now


def _links(
    store: object, secrets_: list[str] | None = None, clock: Clock | None = None
) -> tuple[DirectLinks, OutboxSender]:
    outbox = OutboxSender()
    links = DirectLinks(
        store,  # type: ignore[arg-type]
        outbox,
        secret_keys=secrets_ or [SECRET],
        base_url=BASE,
        limits=LinkLimits(),
        clock=clock or Clock(),
    )
    return links, outbox


def _open(
    links: DirectLinks,
    outbox: OutboxSender,
    *,
    binding: str | None = None,
    single_use: bool = False,
) -> tuple[str, str]:
    url = links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600, single_use=single_use)
    challenge = links.open(tok(url), IP, binding=binding)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    return challenge.challenge_id, code


def _mutations(challenge_id: str) -> list[str]:
    """Every one-character change of the id, plus cuts, padding and field swaps."""
    out: list[str] = []
    for i, ch in enumerate(challenge_id):
        other = "A" if ch != "A" else "B"
        if ch == ".":
            other = "_"
        elif ch.isdigit():
            other = str((int(ch) + 1) % 10)
        out.append(challenge_id[:i] + other + challenge_id[i + 1 :])
    fields = challenge_id.split(".")
    out += [
        challenge_id[:-1],
        challenge_id + "A",
        challenge_id + ".",
        "." + challenge_id,
        " " + challenge_id,
        challenge_id.upper(),
        ".".join(fields[:-1]),
        ".".join([*fields[:-2], fields[-1]]),
        ".".join([fields[1], fields[0], *fields[2:]]),
    ]
    return [m for m in out if m != challenge_id]


def test_id_shape_and_length() -> None:
    store = MemoryStore()
    links, outbox = _links(store)
    plain, _ = _open(links, outbox)
    links.revoke_user("user-1")  # the next links carry the user's epoch
    bound, _ = _open(links, outbox, binding="browser-1")
    assert 140 <= len(plain) < len(bound) <= 178
    for challenge_id in (plain, bound):
        assert set(challenge_id) <= set(B64 + ".") and challenge_id.count(".") == 8
    # No code, code MAC, user id, phone or scope in it (the code's MAC stays server-side).
    for secret_part in ("user-1", PHONE, PHONE[1:], "invoice", "INV-1"):
        assert secret_part not in plain and secret_part not in bound


def test_every_alteration_is_unknown_and_touches_nothing() -> None:
    store = MemoryStore()
    counting = Counting(store)
    links, outbox = _links(counting)
    challenge_id, code = _open(links, outbox)
    before = dict(store._data)
    counting.calls.clear()
    for forged in _mutations(challenge_id):
        with pytest.raises(FlowNotFound) as err:
            links.verify(forged, code, client_ip=IP)
        assert err.value.code == "challenge_unknown"
    assert counting.calls == []  # refused before the store was asked anything
    assert dict(store._data) == before
    assert links.verify(challenge_id, code).resource == "INV-1"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        secrets.token_urlsafe(32),  # the format before ids carried the verify's facts
        "x" * 201,
        "." * 8,
        None,
        12345,
        b"bytes",
    ],
)
def test_old_format_and_junk_are_unknown(junk: object) -> None:
    counting = Counting(MemoryStore())
    links, _ = _links(counting)
    with pytest.raises(FlowNotFound):
        links.verify(junk, "123456")  # type: ignore[arg-type]
    assert counting.calls == []


def test_an_id_from_another_service_secret_is_unknown() -> None:
    store = MemoryStore()
    theirs, their_outbox = _links(store, [secrets.token_urlsafe(40)])
    challenge_id, code = _open(theirs, their_outbox)
    ours, _ = _links(store)
    with pytest.raises(FlowNotFound):
        ours.verify(challenge_id, code)
    assert theirs.verify(challenge_id, code).scope == "invoice:approve"


def test_fields_of_another_challenge_do_not_combine() -> None:
    """Link id and user tag of one id with the tag of another: unknown."""
    store = MemoryStore()
    links, outbox = _links(store)
    first, code = _open(links, outbox)
    second, _ = _open(links, outbox)
    a, b = first.split("."), second.split(".")
    assert len(a) == len(b) == 9
    for i in range(len(a) - 1):
        spliced = ".".join([*a[:i], b[i], *a[i + 1 :]])
        if spliced != first:
            with pytest.raises(FlowNotFound):
                links.verify(spliced, code)


def test_codes_pending_across_a_rotation_still_verify() -> None:
    store = MemoryStore()
    old_secret, new_secret = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    links, outbox = _links(store, [old_secret])
    challenge_id, code = _open(links, outbox)
    rotated, _ = _links(store, [new_secret, old_secret])
    with pytest.raises(InvalidInput):
        rotated.verify(challenge_id, wrong_of(code))  # keyed by the old secret: counted
    assert rotated.challenge_attempts(challenge_id) == 1
    assert rotated.verify(challenge_id, code).resource == "INV-1"
    retired, _ = _links(store, [new_secret])
    with pytest.raises(FlowNotFound):
        retired.verify(challenge_id, code)


def test_another_browser_is_refused_uncounted_and_cannot_lock() -> None:
    store = MemoryStore()
    counting = Counting(store)
    links, outbox = _links(counting)
    challenge_id, code = _open(links, outbox, binding="browser-1")
    before = dict(store._data)
    counting.calls.clear()
    for binding in ("browser-2", None, ""):
        for _ in range(10):
            with pytest.raises(InvalidInput) as err:
                links.verify(challenge_id, wrong_of(code), binding=binding)
            assert err.value.code == "challenge_binding"
    assert counting.calls == [] and dict(store._data) == before
    assert links.verify(challenge_id, code, binding="browser-1").resource == "INV-1"


def test_expired_code_is_refused_before_the_store() -> None:
    store = MemoryStore()
    counting = Counting(store)
    clock = Clock()
    links, outbox = _links(counting, clock=clock)
    challenge_id, code = _open(links, outbox)
    clock.now += LinkLimits().code_ttl
    counting.calls.clear()
    with pytest.raises(Expired) as err:
        links.verify(challenge_id, wrong_of(code))
    assert err.value.code == "otp_expired" and counting.calls == []
    assert links.challenge_attempts(challenge_id) == 0


def test_parse_reads_back_what_open_put_in() -> None:
    store = MemoryStore()
    clock = Clock()
    links, outbox = _links(store, clock=clock)
    challenge_id, _ = _open(links, outbox, binding="b", single_use=True)
    parsed = parse_challenge_id(LinkKeys([SECRET]), challenge_id, "b")
    assert parsed.uref.startswith("u_") and parsed.single_use and parsed.key_index == 0
    assert parsed.expires_at == pytest.approx(clock.now + LinkLimits().code_ttl, abs=0.001)
    assert parsed.expires_at <= clock.now + LinkLimits().code_ttl
    assert parsed.link_expires == pytest.approx(clock.now + 3600, abs=0.001)
    assert parsed.nonce not in repr(parsed) and parsed.link_id not in repr(parsed)
