"""Exact counts under real concurrency, on memory, SQLite and Redis (R-01, R-02, R-05).

Threads are released together by a barrier (sync stores); asyncio tasks start
together through ``gather`` (async stores). Every figure is asserted exactly.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from authbroker.audit import AuditLog, MemorySink
from authbroker.engines.links import AsyncDirectLinks, DirectLinks, LinkGrant, LinkLimits
from authbroker.errors import AlreadyUsed, AuthBrokerError, InvalidInput, Locked, RateLimited
from authbroker.sms import OutboxSender
from authbroker.store.base import AsyncStateStore, StateStore
from conftest import run_together

SECRET = secrets.token_urlsafe(40)
PHONE = "+358401234567"
BASE = "https://app.example.fi"
IP = "203.0.113.7"


async def gather_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    return list(await asyncio.gather(*(fn(i) for i in range(n)), return_exceptions=True))


def kinds(results: list[Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in results:
        if isinstance(r, LinkGrant):
            out["grant"] += 1
        elif isinstance(r, AuthBrokerError):
            out[f"{type(r).__name__}:{r.code}"] += 1
        elif isinstance(r, BaseException):
            raise r  # anything untyped is a bug
        else:
            out[type(r).__name__] += 1
    return out


def make_sync(
    store: StateStore, limits: LinkLimits
) -> tuple[DirectLinks, OutboxSender, MemorySink]:
    outbox, sink = OutboxSender(), MemorySink()
    links = DirectLinks(
        store, outbox, secret_keys=[SECRET], base_url=BASE, audit=AuditLog([sink]), limits=limits
    )
    return links, outbox, sink


def make_async(
    store: AsyncStateStore, limits: LinkLimits
) -> tuple[AsyncDirectLinks, OutboxSender, MemorySink]:
    outbox, sink = OutboxSender(), MemorySink()
    links = AsyncDirectLinks(
        store, outbox, secret_keys=[SECRET], base_url=BASE, audit=AuditLog([sink]), limits=limits
    )
    return links, outbox, sink


def tok(url: str) -> str:
    return url.rsplit("/", 1)[1]


def wrong_of(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def count(sink: MemorySink, name: str, reason: str | None = None) -> int:
    return sum(1 for e in sink.events if e.name == name and (reason is None or e.reason == reason))


# --- 100 concurrent correct verifications → exactly one grant ----------------


@pytest.mark.parametrize("single_use", [False, True])
def test_r01_one_grant_from_100_threads(sync_store: StateStore, single_use: bool) -> None:
    links, outbox, sink = make_sync(sync_store, LinkLimits())
    token = tok(
        links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600, single_use=single_use)
    )
    link_id = links.link_id(token)
    challenge = links.open(token, IP)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    results = run_together(100, lambda i: links.verify(challenge.challenge_id, code))
    got = kinds(results)
    assert got["grant"] == 1, got
    # Everyone else was refused with a typed replay (or, while the winner was still
    # consuming, a typed lock on the congested challenge); no wrong-code answers.
    assert sum(got.values()) == 100
    allowed = {"grant", "AlreadyUsed:otp_replayed", "AlreadyUsed:link_used", "Locked:otp_locked"}
    assert set(got) <= allowed, got
    # The losers' correct codes left the counters as they were (R-01).
    assert links.link_failures(link_id) == 0
    assert links.challenge_attempts(challenge.challenge_id) == 0
    assert count(sink, "otp.verified") == 1
    assert count(sink, "otp.failed", "otp_wrong") == 0
    if single_use:
        with pytest.raises(AlreadyUsed):
            links.open(token, IP)


async def test_r01_one_grant_from_100_tasks(async_store: AsyncStateStore) -> None:
    links, outbox, sink = make_async(async_store, LinkLimits())
    token = tok(
        await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600, single_use=True)
    )
    challenge = await links.open(token, IP)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    results = await gather_together(100, lambda i: links.verify(challenge.challenge_id, code))
    got = kinds(results)
    assert got["grant"] == 1, got
    allowed = {"grant", "AlreadyUsed:otp_replayed", "AlreadyUsed:link_used", "Locked:otp_locked"}
    assert set(got) <= allowed, got
    assert await links.link_failures(links.link_id(token)) == 0
    assert await links.challenge_attempts(challenge.challenge_id) == 0
    assert count(sink, "otp.verified") == 1
    await links.aclose()


# --- 200 concurrent wrong guesses → exactly the configured lockout -----------


def test_r02_exact_lockout_from_200_threads(sync_store: StateStore) -> None:
    links, outbox, sink = make_sync(sync_store, LinkLimits())
    token = tok(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    link_id = links.link_id(token)
    challenge = links.open(token, IP)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    bad = wrong_of(code)
    results = run_together(200, lambda i: links.verify(challenge.challenge_id, bad))
    got = kinds(results)
    # Exactly five codes were evaluated; the 5th locked; the rest were refused unread.
    assert got == Counter(
        {"InvalidInput:otp_wrong": 4, "Locked:challenge_locked": 1, "Locked:otp_locked": 195}
    ), got
    assert count(sink, "otp.failed", "otp_wrong") == 5
    assert links.challenge_attempts(challenge.challenge_id) == 5
    assert links.link_failures(link_id) == 5
    with pytest.raises(Locked):
        links.verify(challenge.challenge_id, code)  # the right code, afterwards
    assert count(sink, "otp.verified") == 0


async def test_r02_exact_lockout_from_200_tasks(async_store: AsyncStateStore) -> None:
    links, outbox, sink = make_async(async_store, LinkLimits())
    token = tok(await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    challenge = await links.open(token, IP)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    bad = wrong_of(code)
    results = await gather_together(200, lambda i: links.verify(challenge.challenge_id, bad))
    got = kinds(results)
    assert got["InvalidInput:otp_wrong"] + got["Locked:challenge_locked"] == 5, got
    assert got["Locked:otp_locked"] == 195, got
    assert count(sink, "otp.failed", "otp_wrong") == 5
    assert await links.challenge_attempts(challenge.challenge_id) == 5
    assert await links.link_failures(links.link_id(token)) == 5
    with pytest.raises(Locked):
        await links.verify(challenge.challenge_id, code)
    await links.aclose()


def test_r02_link_limit_caps_parallel_guessing_across_challenges(sync_store: StateStore) -> None:
    """Per-challenge 5, per-link 7: a resend gives only 2 more guesses, even in parallel."""
    limits = LinkLimits(resend_cooldown=0, max_failures_per_link=7)
    links, outbox, sink = make_sync(sync_store, limits)
    token = tok(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    first = links.open(token, IP)
    bad = wrong_of(outbox.last().code())  # type: ignore[arg-type, union-attr]
    run_together(50, lambda i: links.verify(first.challenge_id, bad))
    second = links.open(token, IP)
    bad = wrong_of(outbox.last().code())  # type: ignore[arg-type, union-attr]
    got = kinds(run_together(50, lambda i: links.verify(second.challenge_id, bad)))
    assert got["InvalidInput:otp_wrong"] + got["Locked:link_locked"] >= 2
    assert links.link_failures(links.link_id(token)) == 7
    assert count(sink, "otp.failed", "otp_wrong") == 7
    with pytest.raises(Locked):
        links.open(token, IP)


# --- SMS caps under concurrency ---------------------------------------------------


def test_r05_one_link_100_threads(sync_store: StateStore) -> None:
    links, outbox, _ = make_sync(
        sync_store, LinkLimits(resend_cooldown=0, sends_per_link=3, sends_per_ip=500)
    )
    token = tok(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    got = kinds(run_together(100, lambda i: links.open(token, IP)))
    assert len(outbox) == 3
    assert got == Counter({"OtpChallenge": 3, "RateLimited:sms_cap_link": 97}), got


def test_r05_cooldown_100_threads(sync_store: StateStore) -> None:
    links, outbox, _ = make_sync(sync_store, LinkLimits(resend_cooldown=30))
    token = tok(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    got = kinds(run_together(100, lambda i: links.open(token, IP)))
    assert len(outbox) == 1
    assert got == Counter({"OtpChallenge": 1, "RateLimited:sms_cooldown": 99}), got


def test_r05_ten_links_one_phone_100_threads(sync_store: StateStore) -> None:
    limits = LinkLimits(resend_cooldown=0, sends_per_link=3, sends_per_phone=5, sends_per_ip=500)
    links, outbox, _ = make_sync(sync_store, limits)
    tokens = [
        tok(links.issue(f"user-{i}", PHONE, "invoice:approve", f"INV-{i}", 3600)) for i in range(10)
    ]
    got = kinds(run_together(100, lambda i: links.open(tokens[i % 10], f"198.51.100.{i}")))
    assert len(outbox) == 5
    assert got["OtpChallenge"] == 5
    assert all(k.startswith("RateLimited:sms_cap_") for k in got if k != "OtpChallenge")


def test_r05_one_ip_100_threads(sync_store: StateStore) -> None:
    limits = LinkLimits(resend_cooldown=0, sends_per_link=3, sends_per_ip=4)
    links, outbox, _ = make_sync(sync_store, limits)
    tokens = [
        tok(links.issue(f"user-{i}", f"+35840123456{i}", "invoice:approve", "INV", 3600))
        for i in range(10)
    ]
    got = kinds(run_together(100, lambda i: links.open(tokens[i % 10], IP)))
    assert len(outbox) == 4
    assert got["OtpChallenge"] == 4


async def test_r05_one_link_100_tasks(async_store: AsyncStateStore) -> None:
    links, outbox, _ = make_async(
        async_store, LinkLimits(resend_cooldown=0, sends_per_link=3, sends_per_ip=500)
    )
    token = tok(await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    got = kinds(await gather_together(100, lambda i: links.open(token, IP)))
    assert len(outbox) == 3
    assert got == Counter({"OtpChallenge": 3, "RateLimited:sms_cap_link": 97}), got
    await links.aclose()


def test_untyped_errors_would_fail_these_tests() -> None:
    """The helper refuses untyped exceptions, so a KeyError cannot pass as a refusal."""
    with pytest.raises(KeyError):
        kinds([KeyError("x")])
    assert kinds([InvalidInput("x", code="c"), RateLimited("y")]) == Counter(
        {"InvalidInput:c": 1, "RateLimited:rate_limited": 1}
    )
