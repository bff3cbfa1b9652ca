"""Swedish BankID recommended user messages (RFA codes) in Swedish, English, Finnish.

BankID asks relying parties to show its recommended texts ("RFA" = *rekommenderade
felmeddelanden/användarmeddelanden*) for every order state, so users see the same
wording in every service. The Swedish and English strings are BankID's published
texts (https://developers.bankid.com/, "Recommended user messages"; also reproduced
in gomsim/go-bankid ``constants.go``; two typos of that copy are fixed:
"giltigt" in RFA15B and "your ID document" in RFA23). BankID publishes no Finnish
texts; the Finnish ones are our own translations.

Which RFA belongs to which ``hintCode`` / ``errorCode`` follows BankID's collect and
error-code documentation (§1.4 error responses, §1.5 collect states). Unknown hint
codes must be tolerated: RFA21 while pending, RFA22 once failed (§1.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "ERROR_RFA",
    "FAILED_HINTS",
    "LANGUAGES",
    "PENDING_HINTS",
    "RETURN_TO_BROWSER",
    "RFA",
    "error_message",
    "hint_rfa",
    "message",
]

LANGUAGES: Final = ("sv", "en", "fi")

#: Pending hint codes of ``/collect`` (§1.5; ActiveLogin and go-bankid list the same set).
PENDING_HINTS: Final = (
    "outstandingTransaction",
    "noClient",
    "started",
    "userMrtd",
    "userCallConfirm",
    "userSign",
)
#: Failed hint codes of ``/collect`` (§1.5).
FAILED_HINTS: Final = (
    "expiredTransaction",
    "certificateErr",
    "userCancel",
    "cancelled",
    "startFailed",
    "userDeclinedCall",
    "notSupportedByUserApp",
    "transactionRiskBlocked",
)

_RFA: dict[str, dict[str, str]] = {
    "RFA1": {
        "sv": "Starta BankID-appen.",
        "en": "Start your BankID app.",
        "fi": "Käynnistä BankID-sovellus.",
    },
    "RFA2": {
        "sv": "Du verkar inte ha BankID-appen. Installera den och skaffa ett BankID.",
        "en": "You don't seem to have the BankID app. Install the app and get a BankID.",
        "fi": "Sinulla ei näytä olevan BankID-sovellusta. Asenna sovellus ja hanki BankID.",
    },
    "RFA3": {
        "sv": "Åtgärden avbröts. Försök igen.",
        "en": "The action was cancelled. Please try again.",
        "fi": "Toiminto peruttiin. Yritä uudelleen.",
    },
    "RFA4": {
        "sv": "En identifiering eller underskrift pågår redan för ditt personnummer. Försök igen.",
        "en": "An identification or signature is already in progress for your personal "
        "identity number. Please try again.",
        "fi": "Henkilötunnuksellesi on jo käynnissä tunnistautuminen tai allekirjoitus. "
        "Yritä uudelleen.",
    },
    "RFA5": {
        "sv": "Något gick fel. Försök igen.",
        "en": "Something went wrong. Please try again.",
        "fi": "Jokin meni vikaan. Yritä uudelleen.",
    },
    "RFA6": {
        "sv": "Åtgärden avbröts.",
        "en": "The action was cancelled.",
        "fi": "Toiminto peruttiin.",
    },
    "RFA8": {
        "sv": "BankID-appen svarar inte. Kontrollera att den är startad och att du har "
        "internetanslutning. Försök sedan igen.",
        "en": "The BankID app is not responding. Please check that it’s started and that "
        "you have internet access. Try again.",
        "fi": "BankID-sovellus ei vastaa. Tarkista, että sovellus on käynnissä ja että "
        "sinulla on internetyhteys. Yritä sitten uudelleen.",
    },
    "RFA9": {
        "sv": "Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under.",
        "en": "Enter your security code in the BankID app and select Identify or Sign.",
        "fi": "Syötä turvakoodisi BankID-sovellukseen ja vahvista tunnistautuminen tai "
        "allekirjoitus.",
    },
    "RFA13": {
        "sv": "Försöker starta BankID-appen.",
        "en": "Trying to start your BankID app.",
        "fi": "Yritetään käynnistää BankID-sovellus.",
    },
    "RFA15A": {
        "sv": "Söker efter BankID. Säkerställ att du har ett giltigt BankID på den här "
        "datorn. Om du har ett BankID på kort, sätt in kortet i kortläsaren.",
        "en": "Searching for BankID. Make sure you have a valid BankID on this computer. "
        "If you have a BankID on card, please insert the card into your card reader.",
        "fi": "Etsitään BankID:tä. Varmista, että tällä tietokoneella on voimassa oleva "
        "BankID. Jos BankID:si on kortilla, aseta kortti kortinlukijaan.",
    },
    "RFA15B": {
        "sv": "Söker efter BankID. Säkerställ att du har ett giltigt BankID på den här enheten.",
        "en": "Searching for BankID. Make sure you have a valid BankID on this device.",
        "fi": "Etsitään BankID:tä. Varmista, että tällä laitteella on voimassa oleva BankID.",
    },
    "RFA16": {
        "sv": "Ditt BankID är för gammalt eller spärrat. Använd ett annat BankID eller "
        "skaffa ett nytt hos din bank.",
        "en": "Your BankID is blocked or too old. Please use another BankID or get a new "
        "one from your bank.",
        "fi": "BankID:si on liian vanha tai suljettu. Käytä toista BankID:tä tai hanki "
        "uusi pankistasi.",
    },
    "RFA17A": {
        "sv": "Du verkar inte ha BankID-appen/programmet. Installera den och skaffa ett "
        "BankID hos din bank.",
        "en": "You don't seem to have the BankID app/program. Please install it and get "
        "a BankID from your bank.",
        "fi": "Sinulla ei näytä olevan BankID-sovellusta tai -ohjelmaa. Asenna se ja "
        "hanki BankID pankistasi.",
    },
    "RFA17B": {
        "sv": "Misslyckades att läsa av QR-koden. Starta BankID-appen och läs av QR-koden.",
        "en": "Failed to scan the QR code. Start the BankID app and scan the QR code.",
        "fi": "QR-koodin lukeminen epäonnistui. Käynnistä BankID-sovellus ja lue QR-koodi.",
    },
    "RFA19": {
        "sv": "Vill du använda BankID på den här datorn eller ett Mobilt BankID?",
        "en": "Would you like to use BankID on this computer, or a Mobile BankID?",
        "fi": "Haluatko käyttää tämän tietokoneen BankID:tä vai Mobiilia BankID:tä?",
    },
    "RFA20": {
        "sv": "Vill du använda BankID på den här enheten eller på en annan enhet?",
        "en": "Do you want to use BankID on this device or another device?",
        "fi": "Haluatko käyttää BankID:tä tällä laitteella vai toisella laitteella?",
    },
    "RFA21": {
        "sv": "En identifiering eller underskrift pågår.",
        "en": "An identification or signing is in progress.",
        "fi": "Tunnistautuminen tai allekirjoitus on käynnissä.",
    },
    "RFA22": {
        "sv": "Något gick fel. Försök igen.",
        "en": "Something went wrong. Please try again.",
        "fi": "Jokin meni vikaan. Yritä uudelleen.",
    },
    "RFA23": {
        "sv": "Fotografera och läs av din ID-handling med BankID-appen.",
        "en": "Take a photo of, and scan, your ID document with the BankID app.",
        "fi": "Kuvaa ja lue henkilöllisyystodistuksesi BankID-sovelluksella.",
    },
}

#: Read-only RFA table: key -> {language: text}.
RFA: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {k: MappingProxyType(v) for k, v in _RFA.items()}
)

#: Not an RFA: shown by a same-device flow whose order completed in the app while the
#: broker waits for the browser to come back through the order's ``returnUrl``
#: (security requirement SEB-04). Our own wording.
RETURN_TO_BROWSER: Mapping[str, str] = MappingProxyType(
    {
        "sv": "Klart i BankID-appen. Fortsätt i webbläsarfönstret som appen öppnade.",
        "en": "Done in the BankID app. Continue in the browser window the app opened.",
        "fi": "Valmis BankID-sovelluksessa. Jatka selainikkunassa, jonka sovellus avasi.",
    }
)

#: RFA per ``errorCode`` of a non-2xx API answer (§1.4); anything else gets RFA5.
ERROR_RFA: Mapping[str, str] = MappingProxyType(
    {
        "alreadyInProgress": "RFA4",
        "requestTimeout": "RFA5",
        "maintenance": "RFA5",
        "internalError": "RFA5",
        "unauthorized": "RFA5",
        "tooManyRequests": "RFA5",
        "methodNotAllowed": "RFA5",
    }
)


def hint_rfa(status: str, hint_code: str, *, autostart: bool, mobile: bool = False) -> str:
    """The RFA key for a ``/collect`` state (§1.5).

    ``autostart`` says the RP launched the app on this device (same-device flow),
    which changes the text of ``outstandingTransaction`` and ``startFailed``;
    ``mobile`` picks the phone/tablet variant of ``started``.
    """
    if status == "pending":
        if hint_code == "outstandingTransaction":
            return "RFA13" if autostart else "RFA1"
        if hint_code == "noClient":
            return "RFA1"
        if hint_code == "started":
            return "RFA15B" if mobile else "RFA15A"
        if hint_code == "userMrtd":
            return "RFA23"
        if hint_code == "userSign":
            return "RFA9"
        # userCallConfirm has no published RFA; the generic pending text (§1.5 [?]).
        return "RFA21"
    if status == "failed":
        return {
            "expiredTransaction": "RFA8",
            "certificateErr": "RFA16",
            "userCancel": "RFA6",
            "cancelled": "RFA3",
            "startFailed": "RFA17A" if autostart else "RFA17B",
        }.get(hint_code, "RFA22")
    return "RFA21"


def message(rfa: str) -> dict[str, str]:
    """The texts of one RFA key in every language (a fresh dict, JSON-ready)."""
    return dict(RFA.get(rfa, RFA["RFA22"]))


def error_message(error_code: str) -> tuple[str, dict[str, str]]:
    """RFA key and texts for an API ``errorCode`` (§1.4)."""
    rfa = ERROR_RFA.get(error_code, "RFA5")
    return rfa, message(rfa)
