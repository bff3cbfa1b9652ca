"""The languages of the hosted pages: gettext catalogs read with the standard library.

The texts live in ``locale/<lang>/LC_MESSAGES/authbroker.po`` (managed with Babel:
``make i18n-extract``, ``i18n-update``, ``i18n-compile``) and are read here from the
compiled ``.mo`` files with :mod:`gettext`, so importing the web layer costs no Babel
import and no parsing beyond one small file per language.

**Message ids are stable keys** (``"wait.pending"``, ``"error.expired"``), not English
sentences: :attr:`authbroker.errors.AuthBrokerError.user_message_key` and applications
name texts by key, and a reworded English sentence then changes no code. English is a
catalog like the others (``en/LC_MESSAGES/authbroker.po``) and the fallback of every
other language; a key missing everywhere comes back as itself.

Small on purpose: the pages show a handful of sentences, and error messages are
generic (WEB-04, OTP-07) — the user learns what to do next, never why a check
failed in detail.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterable, Iterator
from importlib import resources

from ..errors import ConfigError

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "N_",
    "SOURCE_LANGUAGE",
    "check_languages",
    "negotiate",
    "translate",
]

#: The gettext domain: ``locale/<lang>/LC_MESSAGES/authbroker.mo``.
DOMAIN = "authbroker"
#: Every language with a catalog; ``[broker] languages`` may offer any of them.
LANGUAGES: tuple[str, ...] = ("fi", "sv", "en", "et", "nb")
#: The language every other one falls back to.
SOURCE_LANGUAGE = "en"
#: ``Accept-Language`` primary tags read as a catalog language: browsers of Norwegian
#: users send ``no`` or ``nn`` as often as ``nb``; bokmål is what they read.
_ALIASES = {"no": "nb", "nn": "nb"}
_MAX_ACCEPT_PARTS = 20


def N_(key: str) -> str:
    """Mark ``key`` as a message id for ``pybabel extract`` (``-k N_``); returns it."""
    return key


#: Message ids named outside a ``t()``/``translate()`` call, so extraction finds them:
#: the ``user_message_key`` of every :class:`~authbroker.errors.AuthBrokerError` (a test
#: checks that each one is here), the language links and texts for applications.
MARKED = (
    N_("error.generic"),
    N_("error.invalid"),
    N_("error.expired"),
    N_("error.replayed"),
    N_("error.rate_limited"),
    N_("error.locked"),
    N_("error.unavailable"),
    N_("error.provider"),
    N_("error.cancelled"),
    N_("error.denied"),
    N_("error.internal"),
    N_("error.code"),
    # Each language names itself the same way in every catalog ("Suomeksi").
    N_("lang.fi"),
    N_("lang.sv"),
    N_("lang.en"),
    N_("lang.et"),
    N_("lang.nb"),
    # For applications: the text of their own log-out button.
    N_("logout"),
)


@functools.cache
def _catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` with English behind it (read once)."""
    path = resources.files(__package__) / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as fp:
        catalog: gettext.NullTranslations = gettext.GNUTranslations(fp)
    if language != SOURCE_LANGUAGE:
        catalog.add_fallback(_catalog(SOURCE_LANGUAGE))
    return catalog


def translate(language: str, key: str, **values: str) -> str:
    """The text of ``key`` in ``language`` (English, then the key, as fallbacks).

    ``values`` fill ``{name}`` placeholders (``translate("fi", "link.code_lead",
    phone="+358 40 *** **67")``). An unknown language reads English.
    """
    lang = language if language in LANGUAGES else SOURCE_LANGUAGE
    text = _catalog(lang).gettext(key)
    return text.format(**values) if values else text


def check_languages(languages: Iterable[str], default: str) -> None:
    """Refuse ``[broker] languages`` / ``default_language`` without a catalog.

    A language without a catalog would quietly show English; configuration names
    only what the pages can show (a strict allow-list).
    """
    errors = [
        ConfigError(f"no catalog for language {lang!r} (known: {', '.join(LANGUAGES)})", key=key)
        for key, lang in [
            *(("broker.languages", x) for x in languages),
            ("broker.default_language", default),
        ]
        if lang not in LANGUAGES
    ]
    if errors:
        raise ConfigError.combine(errors)


def _accepted(accept_language: str | None) -> Iterator[str]:
    """The primary language tags of ``Accept-Language``, most preferred first.

    RFC 9110 §12.5.4: ``q`` weights order the tags (ties keep their order), ``q=0``
    means "not acceptable".
    """
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:_MAX_ACCEPT_PARTS]):
        tag, _, params = part.partition(";")
        weight = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        if weight > 0 and primary.isalpha():
            weighted.append((-weight, index, _ALIASES.get(primary, primary)))
    for _, _, primary in sorted(weighted):
        yield primary


def negotiate(
    explicit: str | None,
    accept_language: str | None,
    default: str = SOURCE_LANGUAGE,
    supported: Iterable[str] = LANGUAGES,
    remembered: str | None = None,
) -> str:
    """The page language: ``?lang=``, then the language this browser chose earlier in
    the flow (``remembered``), then ``Accept-Language``, then ``default``.

    Only ``supported`` languages that have a catalog are ever answered.
    """
    allowed = [lang for lang in supported if lang in LANGUAGES]
    for choice in (explicit, remembered):
        if choice and choice in allowed:
            return choice
    for tag in _accepted(accept_language):
        if tag in allowed:
            return tag
    if default in allowed:
        return default
    return allowed[0] if allowed else SOURCE_LANGUAGE
