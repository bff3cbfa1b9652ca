"""The access-log recipes of docs/deployment.md keep every secret out of the log.

The nginx ``map`` and the Apache ``CustomLog`` expressions are read from the page
itself (so the test fails when the page changes into something unsafe) and applied to
real URLs: a direct link issued by :class:`DirectLinks`, OIDC callbacks with ``code``
and ``state``, a TUPAS return carrying a personal identity code, a BankID same-device
return with its nonce, and server-to-server API URLs, which must stay intact.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from authbroker.engines.links import DirectLinks
from authbroker.sms import OutboxSender
from authbroker.store.memory import MemoryStore

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"


def _block(language: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert match, f"no {language} block in {DOC.name}"
    return match.group(1)


def _nginx_rules() -> list[tuple[re.Pattern[str] | None, str]]:
    """``(regex, replacement)`` in order; ``None`` stands for ``default``."""
    body = _block("nginx")
    map_body = re.search(r"map \$request_uri \$loggable_uri \{(.*?)\}", body, re.S)
    assert map_body
    rules: list[tuple[re.Pattern[str] | None, str]] = []
    for line in map_body.group(1).strip().splitlines():
        key, value = line.strip().rstrip(";").split(None, 1)
        value = value.strip().strip('"')
        if key == "default":
            rules.append((None, value))
        else:
            assert key.startswith("~"), line
            # nginx uses PCRE named groups (?<name>...); Python spells them (?P<name>...).
            rules.append((re.compile(key[1:].replace("(?<", "(?P<")), value))
    return rules


def nginx_log(uri: str) -> str:
    for pattern, value in _nginx_rules():
        if pattern is None:
            return uri if value == "$request_uri" else value
        found = pattern.search(uri)
        if found:
            return re.sub(r"\$(\w+)", lambda m, f=found: f.group(m.group(1)), value)
    raise AssertionError("nginx map has no default")


def apache_log(uri: str) -> list[str]:
    """The request target each ``CustomLog`` line whose condition holds writes for ``uri``."""
    body = _block("apache")
    formats = dict((name, fmt) for fmt, name in re.findall(r'LogFormat "(.*)" (\w+)', body))
    written = []
    for name, expr in re.findall(r'CustomLog \S+ (\w+) "expr=(.*)"', body):
        python_expr = re.sub(
            r"%\{REQUEST_URI\} =~ m#(.*?)#", lambda m: f"bool(re.search({m.group(1)!r}, uri))", expr
        )
        python_expr = python_expr.replace("&&", " and ").replace("!(", " not (")
        if eval(python_expr, {"re": re, "uri": uri}):
            if name == "combined":
                written.append(uri)
            else:
                target = re.search(r'%m (\S+)\\"', formats[name])
                assert target, formats[name]
                written.append(target.group(1).replace("%U", urlsplit(uri).path))
    return written


def _direct_link() -> str:
    links = DirectLinks(
        MemoryStore(),
        OutboxSender(),
        secret_keys=[secrets.token_urlsafe(40)],
        base_url="https://app.example.fi",
    )
    url = links.issue(
        user_id="user-1",
        phone="+358401234567",
        scope="invoice:approve",
        resource="INV-1",
        ttl=3600,
    )
    return url.removeprefix("https://app.example.fi")


SECRETS = {
    "code": secrets.token_urlsafe(24),
    "state": secrets.token_urlsafe(24),
    "nonce": secrets.token_urlsafe(24),
    "hetu": "010190-999P",
}


def _cases() -> list[tuple[str, list[str]]]:
    link = _direct_link()
    token = link.rsplit("/", 1)[1]
    return [
        (link, [token]),
        (
            f"/auth/callback/ftn?code={SECRETS['code']}&state={SECRETS['state']}"
            "&iss=https%3A%2F%2Fop.example",
            [SECRETS["code"], SECRETS["state"]],
        ),
        (
            "/auth/callback/tupas-op?B02K_VERS=0003&B02K_CUSTID="
            + SECRETS["hetu"]
            + "&B02K_CUSTNAME=M%C4KI%20MATTI&B02K_MAC=ABCDEF",
            [SECRETS["hetu"], "M%C4KI"],
        ),
        (f"/auth/flow/abc123?nonce={SECRETS['nonce']}", [SECRETS["nonce"]]),
        (f"/auth/link/code?x={SECRETS['code']}", [SECRETS["code"]]),
    ]


@pytest.mark.parametrize("recipe", ["nginx", "apache"])
def test_no_secret_survives_the_recipe(recipe: str) -> None:
    for uri, secret_parts in _cases():
        lines = [nginx_log(uri)] if recipe == "nginx" else apache_log(uri)
        assert len(lines) == 1, (uri, lines)
        for part in secret_parts:
            assert part not in lines[0], (recipe, uri, lines[0])
        assert lines[0].startswith("/auth/"), lines[0]


@pytest.mark.parametrize("recipe", ["nginx", "apache"])
def test_application_urls_stay_readable(recipe: str) -> None:
    for uri in ("/api/v1/companies/123/invoices?page=2", "/invoices/INV-1", "/"):
        lines = [nginx_log(uri)] if recipe == "nginx" else apache_log(uri)
        assert lines == [uri]


def test_a_direct_link_is_replaced_whole() -> None:
    link = _direct_link()
    assert nginx_log(link) == "/auth/link/<redacted>"
    assert apache_log(link) == ["/auth/link/<redacted>"]
