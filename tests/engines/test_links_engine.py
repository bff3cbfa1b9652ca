"""LinkEngine as one routine per operation, and the declared facades around it.

``engine.open(...)``/``engine.resend(...)`` must be the *whole* operation (challenge
stored, caps taken, SMS sent, audited), because the web core composes them with
``yield from``; the facades are the same routines run in a runtime. Also: failures
of a sender are typed and clean up, application callbacks may be coroutines under
the asyncio facade, the old import path warns, and the module layering holds.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import secrets
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from authbroker.audit import AuditLog, MemorySink
from authbroker.engines.links import (
    AsyncDirectLinks,
    DirectLinks,
    LinkEngine,
    LinkLimits,
    OtpChallenge,
)
from authbroker.errors import AccessDenied, ProviderError
from authbroker.kernel import Gen
from authbroker.sms import GatewayApiSender, OutboxMessage, OutboxSender, RetryPolicy, SmsMessage
from authbroker.sms.base import SendGen
from authbroker.store.base import AsyncStateStore, StateStore
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing.simulators.sms_gateways import GatewayApiSimulator

SECRET = secrets.token_urlsafe(40)
PHONE = "+358401234567"
BASE = "https://app.example.fi"
IP = "203.0.113.7"
SRC = Path(__file__).resolve().parents[2] / "src" / "authbroker"


def _sync(store: StateStore, sms: Any = None, **kw: Any) -> tuple[DirectLinks, MemorySink]:
    sink = MemorySink()
    links = DirectLinks(
        store,
        sms if sms is not None else OutboxSender(),
        secret_keys=[SECRET],
        base_url=BASE,
        audit=AuditLog([sink]),
        **kw,
    )
    return links, sink


def _events(sink: MemorySink, name: str, reason: str | None = None) -> int:
    return sum(1 for e in sink.events if e.name == name and (reason is None or e.reason == reason))


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


# --- the engine routine is the complete operation -------------------------------------


def test_composed_engine_open_sends_the_sms(sync_store: StateStore) -> None:
    outbox = OutboxSender()
    links, sink = _sync(sync_store, outbox, limits=LinkLimits(resend_cooldown=0))
    token = _token(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))

    def handler(engine: LinkEngine) -> Gen[OtpChallenge]:
        # What the web core does: compose the engine's routine into its own.
        challenge = yield from engine.open(token, IP, binding="cookie")
        return challenge

    challenge = links.run(handler(links.engine))
    assert len(outbox) == 1 and outbox.messages[0].to == PHONE
    assert _events(sink, "otp.sent") == 1 and _events(sink, "link.opened") == 1
    # resend is one routine too: a fresh code goes out and supersedes the first.
    again = links.run(links.engine.resend(challenge.challenge_id, IP, binding="cookie"))
    assert len(outbox) == 2 and _events(sink, "otp.sent") == 2
    code = outbox.messages[-1].code()
    assert code is not None
    grant = links.verify(again.challenge_id, code, binding="cookie")
    assert grant.resource == "INV-1"


async def test_composed_engine_open_sends_the_sms_async(async_store: AsyncStateStore) -> None:
    outbox, sink = OutboxSender(), MemorySink()
    links = AsyncDirectLinks(
        async_store, outbox, secret_keys=[SECRET], base_url=BASE, audit=AuditLog([sink])
    )
    token = _token(await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    challenge = await links.run(links.engine.open(token, IP))
    assert len(outbox) == 1 and _events(sink, "otp.sent") == 1
    code = outbox.messages[0].code()
    assert code is not None
    assert (await links.verify(challenge.challenge_id, code)).scope == "invoice:approve"
    await links.aclose()


def test_gateway_waits_run_through_the_facade_sleep() -> None:
    """A 429 with Retry-After inside ``open`` is a Sleep effect: the facade's ``sleep``
    carries it out (tests never wait), and exactly one SMS is accepted (SMS-01)."""
    waits: list[float] = []
    with GatewayApiSimulator() as sim:
        sender = GatewayApiSender(
            token=sim.token, sender="Acme", base_url=sim.url, retry=RetryPolicy(max_wait=5)
        )
        links, sink = _sync(MemoryStore(), sender, sleep=waits.append)
        sim.fail_next(429, retry_after="2")
        token = _token(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
        links.open(token, IP)
        links.close()
    assert waits == [2.0]
    assert sim.request_count == 2 and len(sim.accepted) == 1
    assert _events(sink, "otp.sent") == 1


# --- failures of the sender -----------------------------------------------------------


class BrokenSender:
    """A custom sender with a bug: fails with an untyped exception."""

    name = "custom"

    def send(self, message: SmsMessage) -> SendGen:
        raise RuntimeError("bug in a custom sender")
        yield  # pragma: no cover


def test_untyped_sender_failure_is_typed_and_withdraws_the_challenge() -> None:
    store = MemoryStore()
    links, sink = _sync(store, BrokenSender())
    token = _token(links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    with pytest.raises(ProviderError) as err:
        links.open(token, IP)
    assert err.value.code == "sms_sender_failed"
    assert "bug" not in str(err.value)
    assert _events(sink, "sms.failed", "sms_sender_failed") == 1
    assert _events(sink, "otp.sent") == 0
    assert not any(k.startswith("otp:ch:") for k in store._data)


# --- application callbacks may be coroutines under asyncio -------------------------


async def test_async_send_veto_is_awaited() -> None:
    seen: list[tuple[str, str]] = []

    async def veto(user_id: str, phone: str) -> bool:
        seen.append((user_id, phone))
        return user_id == "blocked"

    outbox = OutboxSender()
    links = AsyncDirectLinks(
        AsyncMemoryStore(),
        outbox,
        secret_keys=[SECRET],
        base_url=BASE,
        send_veto=veto,
        limits=LinkLimits(resend_cooldown=0),
    )
    ok = _token(await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    blocked = _token(await links.issue("blocked", PHONE, "invoice:approve", "INV-2", 3600))
    await links.open(ok, IP)  # an awaited False: sent
    with pytest.raises(AccessDenied) as err:
        await links.open(blocked, IP)  # an awaited True: vetoed
    assert err.value.code == "send_vetoed"
    assert seen == [("user-1", PHONE), ("blocked", PHONE)]
    assert len(outbox) == 1
    await links.aclose()


async def test_async_outbox_echo_is_awaited() -> None:
    echoed: list[str] = []

    async def echo(message: OutboxMessage) -> None:
        echoed.append(message.message_id)

    links = AsyncDirectLinks(
        AsyncMemoryStore(), OutboxSender(echo=echo), secret_keys=[SECRET], base_url=BASE
    )
    token = _token(await links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        await links.open(token, IP)
    assert echoed == ["outbox-1"]
    await links.aclose()


# --- declared facades -----------------------------------------------------------------


def test_facades_are_the_engine_routines() -> None:
    links, _ = _sync(MemoryStore())
    alinks = AsyncDirectLinks(
        AsyncMemoryStore(), OutboxSender(), secret_keys=[SECRET], base_url=BASE
    )
    for name in (
        "issue",
        "issue_link",
        "open",
        "resend",
        "verify",
        "revoke",
        "revoke_user",
        "link_live",
        "link_failures",
        "challenge_attempts",
    ):
        routine = getattr(LinkEngine, name)
        assert inspect.isgeneratorfunction(routine), name
        engine_params = list(inspect.signature(routine).parameters.values())[1:]
        for facade in (links, alinks):
            method = getattr(facade, name)
            assert list(inspect.signature(method).parameters.values()) == engine_params, name
            assert method.__doc__ == routine.__doc__
        assert inspect.iscoroutinefunction(getattr(alinks, name)), name
    params = inspect.signature(links.open).parameters
    assert params["binding"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["binding"].default is None
    assert links.link_id == links.link_id  # plain method, same on both
    assert links.engine is not alinks.engine and links.store is not None
    links.close()


def test_link_live_through_the_facade() -> None:
    links, _ = _sync(MemoryStore())
    issued = links.issue_link("user-1", PHONE, "invoice:approve", "INV-1", 3600)
    assert links.link_live(issued.link_id) is True
    links.revoke(issued.link_id)
    assert links.link_live(issued.link_id) is False
    assert links.link_live("not-an-id") is False


# --- the old import path and the layering --------------------------------------------


def test_old_import_path_warns_and_reexports() -> None:
    sys.modules.pop("authbroker.links", None)
    with pytest.warns(DeprecationWarning, match="authbroker.engines.links"):
        old = importlib.import_module("authbroker.links")
    assert old.DirectLinks is DirectLinks and old.AsyncDirectLinks is AsyncDirectLinks
    sys.modules.pop("authbroker.links", None)


def _imports(path: Path) -> set[str]:
    """Absolute module names a source file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted((SRC / "engines" / "links").glob("*.py")) + sorted((SRC / "sms").glob("*.py")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_links_and_sms_layering(path: Path) -> None:
    """Engines and senders import no web, CLI or testing code, and run nothing
    themselves: no private runner, no ``flow.run_sync``/``run_async``."""
    forbidden = ("authbroker.web", "authbroker.cli", "authbroker.testing", "authbroker.simulators")
    assert not [m for m in _imports(path) if m.startswith(forbidden)]
    names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
    names |= {
        a.name
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert not names & {"run_sync", "run_async", "deliver_sync", "deliver_async", "Wait"}
