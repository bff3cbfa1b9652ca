"""FTN claim maps of the brokers users pick: Telia (OIDs), Idura (hetu, satu),
Signicat (nin); SATU carried into Identity.attributes["satu"]."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from authbroker import Done, Loa, Redirect
from authbroker.config import load_config
from authbroker.errors import InvalidInput
from authbroker.providers.oidc import VerifiedClaims, parse_options
from authbroker.providers.oidc.profiles import ftn
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker


def _verified(claims: dict[str, Any]) -> VerifiedClaims:
    config = load_config(environ={}).provider("ftn")
    options = parse_options(config.with_options(issuer="https://op.example", client_id="c"))
    now = time.time()
    return VerifiedClaims(
        provider="ftn",
        options=options,
        id_token={"sub": "opaque", "iat": now, **claims},
        userinfo=None,
        acr="http://ftn.ficora.fi/2017/loa2",
        loa=Loa.SUBSTANTIAL,
        method=None,
        now=now,
    )


@pytest.mark.parametrize(
    ("claims", "satu"),
    [
        ({"urn:oid:1.2.246.21": "070770-905D", "urn:oid:1.2.246.22": "99900101X"}, "99900101X"),
        ({"hetu": "070770-905D", "satu": "99900101X"}, "99900101X"),
        ({"hetu": "070770-905D", "satu": ""}, None),  # Idura: empty for banks
        ({"nin": "070770-905D", "nin_issuing_country": "FI"}, None),  # Signicat
    ],
    ids=["telia", "idura-mobile", "idura-bank", "signicat"],
)
def test_ftn_brokers_claim_names(claims: dict[str, Any], satu: str | None) -> None:
    identity = ftn.map_identity(_verified(claims))
    assert identity.national_id is not None
    assert identity.national_id.value == "070770-905D"
    assert identity.attributes.get("satu") == satu
    if satu:
        assert satu not in repr(identity)
        assert satu not in str(identity.to_dict())


@pytest.mark.parametrize(
    "claims",
    [
        {"hetu": "070770-905D", "satu": "1234"},
        {"nin": "070770-905D", "nin_issuing_country": "SE"},
    ],
    ids=["bad-satu", "other-country"],
)
def test_ftn_bad_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        ftn.map_identity(_verified(claims))


@pytest.mark.parametrize(("method", "satu"), [("fi-mobile-id", "99900101X"), ("fi-bank-id", None)])
def test_broker_oidc_finnish_identity_carries_satu(method: str, satu: str | None) -> None:
    with simulated_broker(load_config(environ={}), store=MemoryStore()) as broker:
        sim = broker.simulator("broker-oidc")
        assert sim is not None
        sim.extra["control"].auto_approve = True
        step = broker.begin("broker-oidc", binding="b", params={"method": method})
        assert isinstance(step, Redirect)
        resp = httpx.get(step.url, timeout=10)
        query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        done = broker.advance(step.flow_id, query, binding="b")
        assert isinstance(done, Done)
        assert done.identity.attributes.get("satu") == satu
