"""Norwegian BankID UserInfo as BankID's TINFO resource server serves it.

https://confluence.bankidnorge.no/confluence/pdoidcl/technical-documentation/api/userinfo:
UserInfo is a signed JWT whose ``iss`` is the TINFO (userinfo) base URL, not the OP
issuer; the ID token's ``sub`` is not stable (https://developer.bankid.no/bankid-oidc-provider/),
so the person is matched by ``bankid_altsub`` / ``nnin_altsub``. The national identity
number already arrives in the ID token, so the profile makes no UserInfo call by default.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from authbroker import Broker, Done, Redirect
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import load_config
from authbroker.errors import InvalidInput
from authbroker.providers.oidc import OidcProvider
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker
from authbroker.testing.simulators.oidc import OpenIdProviderSim, start


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture(params=["none", "signed"])
def bankid(request: pytest.FixtureRequest) -> Iterator[tuple[Any, OpenIdProviderSim, str]]:
    mode = str(request.param)
    overrides = {} if mode == "none" else {"providers": {"bankid-no": {"userinfo": mode}}}
    settings = load_config(environ={}, overrides=overrides)
    config = settings.provider("bankid-no")
    sim = start(config, settings)
    op = sim.extra["op"]
    op.control.auto_approve = True
    try:
        yield settings, config.with_options(**sim.overrides), op, mode
    finally:
        sim.stop()


def _run(settings: Any, config: Any) -> tuple[Broker, MemorySink, Redirect, dict[str, str]]:
    sink = MemorySink()
    broker = simulated_broker(
        settings,
        store=MemoryStore(),
        providers={"bankid-no": OidcProvider(config, settings)},
        audit=AuditLog([sink]),
    )
    step = broker.begin("bankid-no", binding="b")
    assert isinstance(step, Redirect)
    resp = httpx.get(step.url, timeout=10)
    assert resp.status_code == 302, resp.text
    return broker, sink, step, dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def test_default_profile_makes_no_userinfo_call() -> None:
    settings = load_config(environ={})
    assert settings.provider("bankid-no").get("userinfo") == "none"


def test_login_with_and_without_tinfo_userinfo(bankid: Any) -> None:
    settings, config, op, mode = bankid
    before = op.count("userinfo")
    broker, _, step, query = _run(settings, config)
    done = broker.advance(step.flow_id, query, binding="b")
    broker.close()
    assert isinstance(done, Done)
    assert done.identity.national_id is not None
    assert done.identity.national_id.value == "27034698436"
    assert op.count("userinfo") == before + (1 if mode == "signed" else 0)


def test_simulator_userinfo_follows_tinfo() -> None:
    overrides = {"providers": {"bankid-no": {"userinfo": "signed"}}}
    settings = load_config(environ={}, overrides=overrides)
    sim = start(settings.provider("bankid-no"), settings)
    try:
        op = sim.extra["op"]
        op.control.auto_approve = True
        config = settings.provider("bankid-no").with_options(**sim.overrides)
        broker, _, step, query = _run(settings, config)
        done = broker.advance(step.flow_id, query, binding="b")
        broker.close()
        assert isinstance(done, Done)
        # Ask TINFO again with the access token the RP got.
        access_token = next(iter(op.access))
        resp = httpx.get(
            op.metadata()["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=10,
        )
        assert resp.headers["content-type"] == "application/jwt"
        info = _claims(resp.text)
        assert info["iss"] == op.userinfo_iss() == sim.overrides["userinfo_issuer"]
        assert info["iss"] != op.issuer
        assert urlsplit(op.metadata()["userinfo_endpoint"]).path == "/tinfo/userinfo"
        assert info["sub"] != done.identity.attributes["sub"]  # the ID token's sub
        assert info["bankid_altsub"] == done.identity.subject
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("rp_options", "misbehave", "code"),
    [
        # The RP expecting the OP issuer on UserInfo (the old rule) fails on TINFO.
        ({"userinfo_issuer": None}, (), "userinfo_iss_mismatch"),
        # A UserInfo about another BankID person is refused.
        ({}, ("userinfo-sub-append",), "userinfo_sub_mismatch"),
        # Matching by sub (the Core default) cannot work with TINFO's own sub.
        ({"userinfo_subject_claims": ["sub"]}, (), "userinfo_sub_mismatch"),
    ],
    ids=["op-issuer-expected", "altsub-mismatch", "sub-match"],
)
def test_tinfo_userinfo_mismatches_are_refused(
    rp_options: dict[str, Any], misbehave: tuple[str, ...], code: str
) -> None:
    overrides = {"providers": {"bankid-no": {"userinfo": "signed"}}}
    settings = load_config(environ={}, overrides=overrides)
    sim = start(settings.provider("bankid-no"), settings)
    try:
        op = sim.extra["op"]
        op.control.auto_approve = True
        op.control.misbehave(*misbehave)
        options = {**settings.provider("bankid-no").options, **sim.overrides, **rp_options}
        options = {k: v for k, v in options.items() if v is not None}
        config = replace(settings.provider("bankid-no"), options=options)
        broker, sink, step, query = _run(settings, config)
        with pytest.raises(InvalidInput) as err:
            broker.advance(step.flow_id, query, binding="b")
        broker.close()
        assert err.value.code == code
        assert sink.names()[-1] == "flow.failed"
    finally:
        sim.stop()
