"""OTP verify is one atomic store program and nothing else, on every backend (the
challenge id carries what the program needs; its keys share the user's hash tag, so
it also runs on a Redis Cluster), and a wrong code counts on all three limits in
that same program."""

from __future__ import annotations

import pytest
from test_links_concurrency import IP, PHONE, make_sync, tok, wrong_of
from test_sessions_one_trip import Counting

from authbroker.engines.links import LinkGrant, LinkLimits
from authbroker.errors import AccessDenied, AlreadyUsed, InvalidInput, Locked
from authbroker.store.base import StateStore


def _opened(store: StateStore, limits: LinkLimits | None = None) -> tuple[object, str, str]:
    links, _, code = _opened_link(store, limits)
    return links, code[0], code[1]


def _opened_link(
    store: StateStore, limits: LinkLimits | None = None
) -> tuple[object, str, tuple[str, str]]:
    links, outbox, _ = make_sync(store, limits or LinkLimits())
    issued = links.issue_link("user-1", PHONE, "invoice:approve", "INV-1", 3600)
    challenge = links.open(tok(issued.url), IP)
    code = outbox.last().code()  # type: ignore[union-attr]
    assert code is not None
    return links, issued.link_id, (challenge.challenge_id, code)


def test_verify_is_one_program(sync_store: StateStore) -> None:
    counting = Counting(sync_store)
    links, challenge_id, code = _opened(counting)  # type: ignore[arg-type]
    counting.calls.clear()
    with pytest.raises(InvalidInput):
        links.verify(challenge_id, wrong_of(code))  # type: ignore[attr-defined]
    assert counting.calls == ["atomic"]
    counting.calls.clear()
    grant = links.verify(challenge_id, code)  # type: ignore[attr-defined]
    assert isinstance(grant, LinkGrant) and grant.resource == "INV-1"
    assert counting.calls == ["atomic"]
    counting.calls.clear()
    with pytest.raises(AlreadyUsed):
        links.verify(challenge_id, code)  # type: ignore[attr-defined]
    assert counting.calls == ["atomic"]


def test_right_code_at_the_limit_is_refused_and_counts_nothing(sync_store: StateStore) -> None:
    limits = LinkLimits(max_attempts_per_challenge=2)
    links, challenge_id, code = _opened(sync_store, limits)
    for _ in range(2):
        with pytest.raises((InvalidInput, Locked)):
            links.verify(challenge_id, wrong_of(code))  # type: ignore[attr-defined]
    with pytest.raises(Locked) as err:
        links.verify(challenge_id, code)  # type: ignore[attr-defined]
    assert err.value.code == "otp_locked"
    assert links.challenge_attempts(challenge_id) == 2  # type: ignore[attr-defined]


def test_revoked_link_refuses_a_pending_code(sync_store: StateStore) -> None:
    links, link_id, (challenge_id, code) = _opened_link(sync_store)
    links.revoke_user("user-1")  # type: ignore[attr-defined]
    with pytest.raises(AccessDenied) as err:
        links.verify(challenge_id, code)  # type: ignore[attr-defined]
    assert err.value.code == "link_revoked"
    assert links.link_failures(link_id) == 0  # type: ignore[attr-defined]
