"""Localized code messages and the origin-bound ``@host #code`` last line."""

from __future__ import annotations

import re

import pytest

from authbroker.errors import ConfigError, InvalidInput
from authbroker.sms.messages import (
    LANGUAGES,
    TEMPLATES,
    normalize_language,
    origin_host,
    render_code_message,
)

# WICG "Origin-bound one-time codes delivered via SMS" §3: last line "@host #code".
ORIGIN_LINE = re.compile(r"@([a-z0-9.-]+) #([0-9]+)")


def test_all_five_languages_exist() -> None:
    assert set(LANGUAGES) == {"fi", "sv", "en", "et", "nb"}
    assert len(set(TEMPLATES.values())) == 5


@pytest.mark.parametrize("language", ["fi", "sv", "en", "et", "nb"])
def test_message_ends_with_origin_bound_line(language: str) -> None:
    text = render_code_message(
        language, code="004217", host="app.example.fi", service="Kirjanpito", minutes=5
    )
    lines = text.split("\n")
    match = ORIGIN_LINE.fullmatch(lines[-1])
    assert match is not None
    assert match.groups() == ("app.example.fi", "004217")
    assert "004217" in lines[0] and "Kirjanpito" in lines[0] and "5" in lines[0]
    # The code is not the first thing a lock-screen preview shows.
    assert not text.startswith("004217")
    assert len(text) <= 200


def test_language_specific_words() -> None:
    kw = {"code": "123456", "host": "h.example", "service": "S", "minutes": 5}
    assert "Kertakäyttökoodisi" in render_code_message("fi", **kw)  # type: ignore[arg-type]
    assert "engångskod" in render_code_message("sv", **kw)  # type: ignore[arg-type]
    assert "one-time code" in render_code_message("en", **kw)  # type: ignore[arg-type]
    assert "ühekordne" in render_code_message("et", **kw)  # type: ignore[arg-type]
    assert "Engangskoden" in render_code_message("nb", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("fi-FI", "fi"), ("SV_se", "sv"), ("no", "nb"), ("nn", "nb"), ("et", "et"), ("en", "en")],
)
def test_language_normalization(given: str, expected: str) -> None:
    assert normalize_language(given) == expected


@pytest.mark.parametrize("bad", ["de", "", "xx-YY", 5])
def test_unknown_language_refused(bad: object) -> None:
    with pytest.raises(InvalidInput):
        normalize_language(bad)  # type: ignore[arg-type]


def test_non_digit_code_refused() -> None:
    with pytest.raises(InvalidInput):
        render_code_message("en", code="12a456", host="h", service="s", minutes=5)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://App.Example.FI:8443/path", "app.example.fi"),
        ("http://127.0.0.1:8000", "127.0.0.1"),
        ("https://kirjanpitö.fi", "xn--kirjanpit-87a.fi"),  # RFC 3492 punycode
    ],
)
def test_origin_host(url: str, host: str) -> None:
    assert origin_host(url) == host


@pytest.mark.parametrize("url", ["not a url", "https://", "https://under_score.example"])
def test_origin_host_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        origin_host(url)
