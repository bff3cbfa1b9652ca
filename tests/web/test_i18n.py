"""The hosted pages' languages: Babel catalogs that are complete and current, compiled
``.mo`` files that match their ``.po``, and every template rendered in every language
with no untranslated text and no message key on the page."""

from __future__ import annotations

import gettext
import importlib
import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from authbroker import Broker, errors
from authbroker.audit import AuditLog
from authbroker.errors import ConfigError
from authbroker.store.memory import MemoryStore
from authbroker.web import i18n
from authbroker.web.core import WebCore
from authbroker.web.i18n import LANGUAGES, check_languages, negotiate, translate
from authbroker.web.wsgi import WsgiAuthMiddleware
from web_support import BASE, make_settings, providers, wsgi_app

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "src/authbroker/web/locale"
TEMPLATES = ROOT / "src/authbroker/web/templates"
#: The keywords of `make i18n-extract` (I18N_KEYWORDS in the Makefile).
KEYWORDS: dict[str, Any] = {"t": None, "translate": (2,), "N_": None}
#: Texts the same in every language by design: each language names itself.
SELF_NAMES = {f"lang.{code}" for code in LANGUAGES}


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as fp:
        return read_po(fp)


def _ids(catalog: Catalog) -> set[str]:
    return {str(m.id) for m in catalog if m.id}


def test_makefile_extracts_with_the_keywords_used_here() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "I18N_KEYWORDS := -k t -k translate:2 -k N_\n" in makefile
    for target in ("i18n-extract:", "i18n-update:", "i18n-compile:"):
        assert target in makefile


def test_a_catalog_for_exactly_the_known_languages() -> None:
    found = {p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/authbroker.po")}
    assert found == set(LANGUAGES)
    compiled = {p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/authbroker.mo")}
    assert compiled == set(LANGUAGES)


def test_pot_is_current_with_templates_and_code() -> None:
    """`make i18n-extract` would not change the message ids of the .pot."""
    with (ROOT / "babel.cfg").open() as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS
        )
        if isinstance(message, str)
    }
    assert extracted == _ids(_read_po(LOCALE / "authbroker.pot"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_po_is_complete_for_the_pot(lang: str) -> None:
    """Every msgid of the .pot has a translation, none fuzzy, none obsolete."""
    pot = _ids(_read_po(LOCALE / "authbroker.pot"))
    po = _read_po(LOCALE / lang / "LC_MESSAGES/authbroker.po")
    assert _ids(po) == pot
    assert not po.obsolete
    for message in po:
        if message.id:
            assert message.string, f"{lang}: {message.id} is untranslated"
            assert not message.fuzzy, f"{lang}: {message.id} is fuzzy"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_mo_is_compiled_from_the_current_po(lang: str) -> None:
    """`make i18n-compile` would not change the shipped .mo."""
    po = _read_po(LOCALE / lang / "LC_MESSAGES/authbroker.po")
    with (LOCALE / lang / "LC_MESSAGES/authbroker.mo").open("rb") as fp:
        mo = gettext.GNUTranslations(fp)
    for message in po:
        if message.id:
            assert mo.gettext(str(message.id)) == message.string, (lang, message.id)
    ids = {key for key in mo._catalog if key}  # type: ignore[attr-defined]
    assert ids == _ids(po)


@pytest.mark.parametrize("lang", [x for x in LANGUAGES if x != "en"])
def test_no_translation_is_a_copy_of_english(lang: str) -> None:
    pot = _ids(_read_po(LOCALE / "authbroker.pot"))
    copies = [k for k in pot - SELF_NAMES if translate(lang, k) == translate("en", k)]
    assert not copies, f"{lang} shows English for {copies}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_survive_translation(lang: str) -> None:
    for key in _ids(_read_po(LOCALE / "authbroker.pot")):
        source = set(re.findall(r"\{(\w+)\}", translate("en", key)))
        assert set(re.findall(r"\{(\w+)\}", translate(lang, key))) == source, (lang, key)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_message_key_is_in_the_catalog() -> None:
    # Modules that may define more errors register their subclasses on import.
    importlib.import_module("authbroker.broker")

    pot = _ids(_read_po(LOCALE / "authbroker.pot"))
    keys = {
        c.user_message_key for c in [errors.AuthBrokerError, *_subclasses(errors.AuthBrokerError)]
    }
    assert keys <= pot
    assert keys <= set(i18n.MARKED)


def test_translate_falls_back_to_english_then_the_key() -> None:
    assert translate("de", "wait.cancel") == "Cancel"
    assert translate("et", "wait.cancel") == "Katkesta"
    assert translate("nb", "link.code_lead", phone="+47 *** 12") == (
        "Skriv inn koden som ble sendt til +47 *** 12."
    )
    assert translate("fi", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("nb-NO,nb;q=0.9", "nb"),
        ("no", "nb"),
        ("nn-NO", "nb"),
        ("et-EE", "et"),
        ("de, fi;q=0.2, et;q=0.8", "et"),  # q weights order the tags (RFC 9110 §12.5.4)
        ("et;q=0, fi", "fi"),  # q=0: not acceptable
        ("*", "en"),
    ],
)
def test_negotiate_reads_accept_language(accept: str, expected: str) -> None:
    assert negotiate(None, accept, "en", LANGUAGES) == expected


def test_negotiate_order_explicit_then_remembered_then_header() -> None:
    assert negotiate("sv", "fi", "en", LANGUAGES, remembered="et") == "sv"
    assert negotiate(None, "fi", "en", LANGUAGES, remembered="et") == "et"
    assert negotiate("xx", "fi", "en", LANGUAGES, remembered="yy") == "fi"
    assert negotiate("et", None, "en", ("fi", "sv", "en")) == "en"  # not offered


def test_configured_languages_need_a_catalog() -> None:
    check_languages(LANGUAGES, "et")
    with pytest.raises(ConfigError) as err:
        check_languages(("fi", "de"), "xx")
    assert {e.key for e in err.value.errors} == {"broker.languages", "broker.default_language"}
    with pytest.raises(ConfigError):
        WebCore(replace(make_settings(), languages=("fi", "da")))


# --- every template in every language -------------------------------------------------

_DISPLAY = {
    "en": "Test ID",
    "fi": "Testitunnus",
    "sv": "Testlegitimation",
    "et": "Testtunnus",
    "nb": "Testlegitimasjon",
}
_PROVIDER = {"name": "test", "display": _DISPLAY}

#: Representative contexts of every hosted template (each branch shown at least once).
CONTEXTS: list[tuple[str, dict[str, Any]]] = [
    (
        "picker.html",
        {
            "sections": [("picker.banks", [_PROVIDER, _PROVIDER]), (None, [_PROVIDER])],
            "banks": [_PROVIDER, _PROVIDER],
            "others": [_PROVIDER],
            "return_to": "/me",
            "step_up": True,
            "lang_links": [(code, f"/auth/?lang={code}") for code in LANGUAGES],
        },
    ),
    (
        "input.html",
        {
            "provider": "test",
            "protocol": "bankid-se",
            "device_choice": True,
            "needs_input": (),
            "display": _DISPLAY,
            "return_to": "/me",
            "csrf": "c" * 43,
        },
    ),
    (
        "input.html",
        {
            "provider": "test",
            "protocol": "mobiilivarmenne",
            "device_choice": False,
            "needs_input": ("phone",),
            "display": _DISPLAY,
            "return_to": "/me",
            "csrf": "c" * 43,
        },
    ),
    (
        "wait.html",
        _WAIT := {
            "flow_id": "f" * 22,
            "interval": 2.0,
            "message": "",
            "qr": "bankid.x.1.y",
            "qr_src": "data:image/svg+xml;base64,AA==",
            "autostart_url": "bankid:///?autostarttoken=t",
            "verification_code": "ABC 123",
            "return_nonce": "",
            "csrf": "c" * 43,
            "protocol": "bankid-se",
            "provider_name": "Test ID",
            "simulator": True,
        },
    ),
    (
        "webeid.html",
        {"flow_id": "f" * 22, "challenge": "n" * 44, "csrf": "c" * 43, "simulator": True},
    ),
    (
        "autopost.html",
        {"url": "https://bank.example/tupas", "fields": [("A01Y_ACTION_ID", "701")]},
    ),
    ("resubmit.html", {"url": "/auth/callback/test", "fields": [("state", "s")]}),
    ("link.html", {"step": "start", "csrf": "c" * 43, "phone": "", "picker": "/auth/"}),
    (
        "link.html",
        {"step": "code", "csrf": "c" * 43, "phone": "+358 40 *** **67", "picker": "/auth/"},
    ),
    ("error.html", {"message": "MESSAGE", "code": "flow_expired", "back": "/auth/"}),
]

_SHOWN_ATTRIBUTES = ("alt", "title", "aria-label", "placeholder")


class _Visible(HTMLParser):
    """Text a user sees or hears: text outside script/style, labels in attributes and
    the localized messages the scripts show (``data-msg-*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        kind = dict(attrs).get("type")
        for name, value in attrs:
            label = tag == "input" and kind in ("submit", "button") and name == "value"
            shown = name in _SHOWN_ATTRIBUTES or label or name.startswith("data-msg-")
            if shown and value and value.strip():
                self.texts.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.texts.extend(part.strip() for part in re.split(r"\n+", data) if part.strip())


def _render(template: str, lang: str, context: dict[str, Any]) -> str:
    core = WebCore(replace(make_settings(), languages=LANGUAGES))
    response = core.render(template, lang, **context)
    return response.body.decode()


def _visible(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return parser.texts


def _context_texts(context: dict[str, Any]) -> set[str]:
    """Data the page shows as given (names of the test provider, codes, phone)."""
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(context)
    return out


def test_contexts_cover_every_template() -> None:
    names = {p.name for p in TEMPLATES.glob("*.html")} - {"base.html"}
    assert {name for name, _ in CONTEXTS} == names


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(("template", "context"), CONTEXTS)
def test_every_template_is_translated(template: str, context: dict[str, Any], lang: str) -> None:
    """No English fallback in another language and no message key on any page."""
    page = _render(template, lang, context)
    texts = _visible(page)
    assert texts, "nothing visible was found"
    assert f'<html lang="{lang}">' in page
    keys = _ids(_read_po(LOCALE / "authbroker.pot"))
    leaked_keys = [text for text in texts if any(key in text for key in keys)]
    assert not leaked_keys, f"message keys on the page: {leaked_keys}"
    assert not [t for t in texts if re.fullmatch(r"[a-z_]+\.[a-z_.]+", t)]
    if lang == "en":
        return
    english = set(_visible(_render(template, "en", context)))
    allowed = _context_texts(context) | {translate("en", key) for key in SELF_NAMES}
    untranslated = [t for t in texts if t in english and t not in allowed]
    assert not untranslated, f"{template} in {lang} shows English: {untranslated}"


@pytest.mark.parametrize(("template", "context"), CONTEXTS)
def test_templates_write_no_globals(template: str, context: dict[str, Any]) -> None:
    """HTML named access makes every element id a window property: a page script that
    sets a global may be shadowed by (or shadow) an element (the dead Web eID button)."""
    page = _render(template, "en", context)
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    for script in scripts:
        assert not re.search(r"\bwindow\.[A-Za-z_$][\w$]*\s*=(?!=)", script), script


# --- the QR code names the app to scan it with ------------------------------------------


def _qr_client() -> httpx.Client:
    settings = replace(make_settings(), languages=LANGUAGES)
    broker = Broker(settings, store=MemoryStore(), providers=providers(), audit=AuditLog([]))
    app = WsgiAuthMiddleware(wsgi_app, broker=broker)
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_qr_alt_text_names_the_providers_app(lang: str) -> None:
    """WCAG 1.1.1 (https://www.w3.org/TR/WCAG22/#non-text-content): the alt text says
    what the image is for; "QR code for the BankID app" was wrong for every other app."""
    client = _qr_client()
    begin = client.get("/auth/begin/qr", params={"return_to": "/full", "lang": lang})
    assert begin.status_code == 303
    page = client.get(begin.headers["location"], params={"lang": lang}).text
    # web_support configures the "qr" provider as {"en": "Qr", "fi": "QR", "sv": "qr"}.
    name = {"fi": "QR", "sv": "qr"}.get(lang, "Qr")
    alt = re.search(r'<img id="qr" alt="([^"]*)"', page)
    assert alt is not None
    assert alt.group(1) == translate(lang, "wait.qr_alt", provider=name)
    assert f" {name}" in alt.group(1) and "BankID" not in alt.group(1)
    assert translate(lang, "wait.qr_scan", provider=name) in page


def test_qr_alt_text_differs_per_provider() -> None:
    pages = {
        name: _render("wait.html", "fi", {**_WAIT, "provider_name": name})
        for name in ("Ruotsalainen BankID", "Smart-ID")
    }
    for name, page in pages.items():
        assert f'alt="{translate("fi", "wait.qr_alt", provider=name)}"' in page
        assert name in translate("fi", "wait.qr_alt", provider=name)
