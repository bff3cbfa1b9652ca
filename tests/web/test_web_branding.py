"""Branding: name, logo and colours as CSS variables, template override, provider order
and grouping."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from authbroker import Broker
from authbroker.audit import AuditLog
from authbroker.errors import ConfigError
from authbroker.identity import Loa
from authbroker.store.memory import MemoryStore
from authbroker.web.core import Branding
from authbroker.web.wsgi import WsgiAuthMiddleware
from web_support import BASE, EchoProvider, _config, make_settings, providers, wsgi_app

#: Providers of a Finnish deployment beside the test ones (configured after them).
_FINNISH = [("tupas-op", "tupas"), ("tupas-nordea", "tupas"), ("ftn", "oidc")]


def _client(branding: Branding, *, finnish: bool = False) -> httpx.Client:
    settings, adapters = make_settings(), providers()
    if finnish:
        extra = {name: _config(name, protocol, Loa.HIGH) for name, protocol in _FINNISH}
        settings = replace(settings, providers={**settings.providers, **extra})
        adapters |= {name: EchoProvider(name, Loa.HIGH) for name in extra}
    broker = Broker(settings, store=MemoryStore(), providers=adapters, audit=AuditLog([]))
    app = WsgiAuthMiddleware(wsgi_app, broker=broker, branding=branding)
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE)


def test_name_logo_and_colours_reach_the_pages() -> None:
    brand = Branding(
        app_name="Kunta & Co",
        logo_url="/static/logo.svg",
        colors={"accent": "#aa0033", "bg": "rgb(250, 250, 250)"},
    )
    html = _client(brand).get("/auth/").text
    assert '<span id="app-name">Kunta &amp; Co</span>' in html
    assert '<img src="/static/logo.svg" alt="Kunta &amp; Co">' in html
    assert "--accent: #aa0033;" in html and "--bg: rgb(250, 250, 250);" in html


def test_default_pages_have_no_brand_header() -> None:
    assert 'class="brand"' not in _client(Branding()).get("/auth/").text


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"colors": {"accent": "red;}</style><script>"}}, "web.branding.colors"),
        ({"colors": {"font": "#fff"}}, "web.branding.colors"),
        ({"colors": {"accent": "url(https://evil.example/x)"}}, "web.branding.colors"),
        ({"logo_url": "https://evil.example/logo.png"}, "web.branding.logo_url"),
        ({"logo_url": "javascript:alert(1)"}, "web.branding.logo_url"),
        ({"template_dirs": ["/nonexistent/templates"]}, "web.branding.template_dirs"),
    ],
)
def test_unsafe_branding_is_refused(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Branding(**kwargs)  # type: ignore[arg-type]
    assert exc.value.key == key


def test_app_template_overrides_the_picker(tmp_path: Path) -> None:
    (tmp_path / "picker.html").write_text(
        '{% extends "base.html" %}{% block body %}<p id="mine">{{ t("title.picker") }}'
        "{% for p in others %}[{{ p.name }}]{% endfor %}</p>{% endblock %}"
    )
    html = _client(Branding(template_dirs=[tmp_path])).get("/auth/").text
    assert '<p id="mine">' in html
    assert "[echo][weak][qr][card]" in html
    # Pages the app does not override still come from the package.
    assert "<h1>" in _client(Branding(template_dirs=[tmp_path])).get("/auth/nope").text


def test_provider_order_chosen_by_the_app() -> None:
    html = _client(Branding(provider_order=("card", "qr"))).get("/auth/").text
    positions = [html.index(f'data-provider="{n}"') for n in ("card", "qr", "echo", "weak")]
    assert positions == sorted(positions)


def _picker(branding: Branding, lang: str = "en") -> tuple[list[str], dict[str, list[str]]]:
    """The picker's top-level entries in page order (a provider name or ``group:label``)
    and each group's members."""
    html = _client(branding, finnish=True).get("/auth/", params={"lang": lang}).text
    top: list[str] = []
    groups: dict[str, list[str]] = {}
    body = html[html.index('<ul class="grid" id="providers">') :]
    for m in re.finditer(
        r'<details data-group="([^"]*)"><summary>([^<]*)</summary>(.*?)</details>'
        r'|data-provider="([^"]+)"',
        body,
        flags=re.S,
    ):
        if m.group(1) is not None:
            top.append(f"group:{m.group(2)}")
            groups[m.group(2)] = re.findall(r'data-provider="([^"]+)"', m.group(3))
        else:
            top.append(m.group(4))
    return top, groups


def test_default_picker_puts_ftn_first_and_folds_tupas_banks() -> None:
    top, groups = _picker(Branding())
    assert top == ["ftn", "echo", "weak", "qr", "card", "group:Online bank"]
    assert groups == {"Online bank": ["tupas-op", "tupas-nordea"]}
    # The group label is a message key, translated.
    assert _picker(Branding(), "fi")[1] == {"Verkkopankki": ["tupas-op", "tupas-nordea"]}


def test_app_chooses_order_and_groups() -> None:
    brand = Branding(
        provider_order=("card", "protocol:tupas"),
        provider_groups={"Online bank": ["tupas-*"], "Test methods": ["echo", "weak"]},
    )
    top, groups = _picker(brand)
    # A group stands where its first member is; the rest follow in configuration order.
    assert top == ["card", "group:Online bank", "group:Test methods", "qr", "ftn"]
    assert groups == {"Online bank": ["tupas-op", "tupas-nordea"], "Test methods": ["echo", "weak"]}


def test_a_provider_joins_the_first_group_it_matches() -> None:
    brand = Branding(provider_groups=[("First", ["tupas-op", "echo"]), ("Second", ["tupas-*"])])
    assert _picker(brand)[1] == {"First": ["echo", "tupas-op"]}  # Second keeps one: unfolded
    top = _picker(brand)[0]
    assert top == ["ftn", "group:First", "weak", "qr", "card", "tupas-nordea"]


def test_groups_can_be_turned_off_and_a_group_of_one_is_not_folded() -> None:
    top, groups = _picker(Branding(provider_groups=()))
    assert groups == {}
    assert top == ["ftn", "echo", "weak", "qr", "card", "tupas-op", "tupas-nordea"]
    assert _picker(Branding(provider_groups={"Only": ["qr"]}))[1] == {}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"provider_order": "ftn"}, "web.branding.provider_order"),
        ({"provider_order": ["ftn", "<b>"]}, "web.branding.provider_order"),
        ({"provider_order": ["protocol:"]}, "web.branding.provider_order"),
        ({"provider_groups": {"Banks": "tupas-*"}}, "web.branding.groups"),
        ({"provider_groups": {"Banks": ["tupas-*", "x y"]}}, "web.branding.groups"),
        ({"provider_groups": {"": ["tupas-*"]}}, "web.branding.groups"),
        ({"provider_groups": {"x" * 81: ["tupas-*"]}}, "web.branding.groups"),
    ],
)
def test_bad_order_or_groups_are_refused(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Branding(**kwargs)  # type: ignore[arg-type]
    assert exc.value.key == key
