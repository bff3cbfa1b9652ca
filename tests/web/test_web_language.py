"""The language a user chooses (``?lang=`` or a language link) holds for the whole
flow, on ASGI and WSGI: on the waiting page, after the provider's redirect back and on
error pages, even when the browser's Accept-Language says otherwise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authbroker.web.i18n import translate
from web_support import Stack, build

FINNISH_BROWSER = {"accept-language": "fi-FI,fi;q=0.9,en;q=0.5"}


@pytest.fixture(params=["asgi", "wsgi"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


def _h1(response: httpx.Response) -> str:
    m = re.search(r"<h1>(.*?)</h1>", response.text)
    assert m, response.text
    return m.group(1)


def test_language_chosen_at_begin_holds_on_the_waiting_page(stack: Stack) -> None:
    c = stack.client
    r = c.get(
        "/auth/begin/qr", params={"return_to": "/full", "lang": "sv"}, headers=FINNISH_BROWSER
    )
    assert r.status_code == 303
    wait = r.headers["location"]
    assert wait.startswith("/auth/flow/") and "lang" not in wait
    page = c.get(wait, headers=FINNISH_BROWSER)
    assert page.status_code == 200
    assert '<html lang="sv">' in page.text
    assert _h1(page) == translate("sv", "title.wait")


def test_language_link_on_picker_holds_through_the_provider_redirect(stack: Stack) -> None:
    c = stack.client
    c.get("/auth/", headers=FINNISH_BROWSER)  # first visit: the flow cookie is set
    picker = c.get("/auth/", params={"lang": "sv"}, headers=FINNISH_BROWSER)  # language link
    assert _h1(picker) == translate("sv", "title.picker")
    # The picker's buttons carry ?lang=, but an application may start the flow without.
    r = c.get("/auth/begin/echo", params={"return_to": "/full"}, headers=FINNISH_BROWSER)
    assert r.status_code == 303
    assert parse_qs(urlsplit(r.headers["location"]).query)["s"]
    # The provider sends the browser back with no language of ours in the URL.
    error = c.get("/auth/callback/echo", params={"secret": "wrong"}, headers=FINNISH_BROWSER)
    assert error.status_code == 400
    assert '<html lang="sv">' in error.text
    assert _h1(error) == translate("sv", "title.error")


def test_a_new_choice_replaces_the_kept_one(stack: Stack) -> None:
    c = stack.client
    r = c.get("/auth/begin/qr", params={"lang": "sv"}, headers=FINNISH_BROWSER)
    wait = r.headers["location"]
    assert _h1(c.get(wait, params={"lang": "en"})) == translate("en", "title.wait")
    # A page that sets the flow cookie keeps the new choice (the picker here).
    c.get("/auth/", params={"lang": "en"}, headers=FINNISH_BROWSER)
    assert _h1(c.get(wait, headers=FINNISH_BROWSER)) == translate("en", "title.wait")


def test_a_language_not_offered_is_ignored_and_kept_choice_stays(stack: Stack) -> None:
    c = stack.client
    r = c.get("/auth/begin/qr", params={"lang": "sv"}, headers=FINNISH_BROWSER)
    wait = r.headers["location"]
    c.get("/auth/", params={"lang": "de"}, headers=FINNISH_BROWSER)  # not offered: ignored
    # et has a catalog but this deployment offers fi, sv, en only.
    c.get("/auth/", params={"lang": "et"}, headers=FINNISH_BROWSER)
    assert _h1(c.get(wait, headers=FINNISH_BROWSER)) == translate("sv", "title.wait")


def test_another_browser_does_not_inherit_the_choice(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/qr", params={"lang": "sv"}, headers=FINNISH_BROWSER)
    other = stack.fresh_client()
    page = other.get(r.headers["location"], headers=FINNISH_BROWSER)
    assert '<html lang="fi">' in page.text  # no flow cookie: Accept-Language decides
