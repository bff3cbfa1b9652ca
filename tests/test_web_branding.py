"""Branding: name, logo and colours as CSS variables, template override, provider order."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authbroker.audit import AuditLog
from authbroker.broker import Broker
from authbroker.errors import ConfigError
from authbroker.store.memory import MemoryStore
from authbroker.web.core import Branding
from authbroker.web.wsgi import WsgiAuthMiddleware
from web_support import BASE, make_settings, providers, wsgi_app


def _client(branding: Branding) -> httpx.Client:
    broker = Broker(make_settings(), store=MemoryStore(), providers=providers(), audit=AuditLog([]))
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
