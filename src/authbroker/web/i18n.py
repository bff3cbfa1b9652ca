"""The message catalog of the hosted pages (Finnish, Swedish, English).

Small on purpose: the pages show a handful of sentences, and error messages are
generic (WEB-04, OTP-07) — the user learns what to do next, never why a check
failed in detail. Keys of :attr:`authbroker.errors.AuthBrokerError.user_message_key`
live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["LANGUAGES", "MESSAGES", "negotiate", "translate"]

LANGUAGES = ("fi", "sv", "en")

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title.picker": "Identify yourself",
        "picker.lead": "Choose how you want to identify yourself.",
        "picker.step_up": "This page needs strong identification. Identify yourself to continue.",
        "picker.banks": "Online bank",
        "picker.other": "Other methods",
        "picker.link_note": "You can also use a personal link you received, for that task only.",
        "title.bankid": "BankID",
        "bankid.choose": "Do you want to use BankID on this device or on another device?",
        "bankid.same_device": "BankID on this device",
        "bankid.other_device": "BankID on another device",
        "bankid.open_app": "Open BankID",
        "bankid.scan": "Start the BankID app and scan the QR code.",
        "title.mobile": "Mobile ID",
        "mobile.phone": "Mobile phone number",
        "mobile.submit": "Send request to phone",
        "mobile.compare": "Check that your phone shows the same code:",
        "title.wait": "Waiting for identification",
        "wait.pending": "Waiting…",
        "wait.cancel": "Cancel",
        "title.webeid": "ID card",
        "webeid.lead": "Insert your ID card in the reader and confirm with PIN1.",
        "webeid.start": "Identify with ID card",
        "webeid.no_extension": "The Web eID browser extension was not found.",
        "webeid.simulator": "Use the simulator's test card",
        "title.autopost": "Continue to your bank",
        "autopost.continue": "Continue",
        "title.link": "Personal link",
        "link.lead": "We will send a one-time code by text message to your phone.",
        "link.send": "Send code",
        "link.code_lead": "Enter the code sent to {phone}.",
        "link.code": "One-time code",
        "link.verify": "Continue",
        "link.resend": "Send a new code",
        "link.strong": "Identify with strong authentication instead",
        "link.sms_risk": "A text message code is weaker than strong identification.",
        "title.error": "Identification failed",
        "error.back": "Back to identification",
        "error.generic": "Something went wrong. Please try again.",
        "error.invalid": "The request was not valid. Please start again.",
        "error.expired": "The identification expired. Please start again.",
        "error.replayed": "This identification was already used. Please start again.",
        "error.rate_limited": "Too many attempts. Please wait a moment and try again.",
        "error.locked": "Too many attempts. Request a new code or identify in another way.",
        "error.unavailable": "The service is temporarily unavailable. Please try again later.",
        "error.provider": "The identification service answered with an error.",
        "error.cancelled": "The identification was cancelled.",
        "error.denied": "You do not have access to this page.",
        "error.code": "The code is wrong or no longer valid. Request a new code.",
        "error.internal": "An unexpected error occurred. Please try again later.",
        "error.not_found": "Page not found.",
        "code.label": "Error code",
        "logout": "Log out",
        "lang.fi": "Suomeksi",
        "lang.sv": "På svenska",
        "lang.en": "In English",
    },
    "fi": {
        "title.picker": "Tunnistaudu",
        "picker.lead": "Valitse tunnistustapa.",
        "picker.step_up": "Tämä sivu vaatii vahvan tunnistautumisen. Tunnistaudu jatkaaksesi.",
        "picker.banks": "Verkkopankki",
        "picker.other": "Muut tavat",
        "picker.link_note": (
            "Voit käyttää myös saamaasi henkilökohtaista linkkiä, vain siihen tehtävään."
        ),
        "title.bankid": "BankID",
        "bankid.choose": "Käytätkö BankID:tä tällä vai toisella laitteella?",
        "bankid.same_device": "BankID tällä laitteella",
        "bankid.other_device": "BankID toisella laitteella",
        "bankid.open_app": "Avaa BankID",
        "bankid.scan": "Käynnistä BankID-sovellus ja lue QR-koodi.",
        "title.mobile": "Mobiilivarmenne",
        "mobile.phone": "Matkapuhelinnumero",
        "mobile.submit": "Lähetä pyyntö puhelimeen",
        "mobile.compare": "Tarkista, että puhelimesi näyttää saman koodin:",
        "title.wait": "Odotetaan tunnistusta",
        "wait.pending": "Odotetaan…",
        "wait.cancel": "Peruuta",
        "title.webeid": "Henkilökortti",
        "webeid.lead": "Aseta henkilökortti lukijaan ja vahvista PIN1-koodilla.",
        "webeid.start": "Tunnistaudu henkilökortilla",
        "webeid.no_extension": "Web eID -selainlaajennusta ei löytynyt.",
        "webeid.simulator": "Käytä simulaattorin testikorttia",
        "title.autopost": "Jatka pankkiisi",
        "autopost.continue": "Jatka",
        "title.link": "Henkilökohtainen linkki",
        "link.lead": "Lähetämme kertakäyttöisen koodin tekstiviestillä puhelimeesi.",
        "link.send": "Lähetä koodi",
        "link.code_lead": "Syötä numeroon {phone} lähetetty koodi.",
        "link.code": "Kertakäyttökoodi",
        "link.verify": "Jatka",
        "link.resend": "Lähetä uusi koodi",
        "link.strong": "Tunnistaudu sen sijaan vahvasti",
        "link.sms_risk": "Tekstiviestikoodi on heikompi kuin vahva tunnistautuminen.",
        "title.error": "Tunnistus epäonnistui",
        "error.back": "Takaisin tunnistautumiseen",
        "error.generic": "Jokin meni vikaan. Yritä uudelleen.",
        "error.invalid": "Pyyntö ei ollut kelvollinen. Aloita alusta.",
        "error.expired": "Tunnistus vanheni. Aloita alusta.",
        "error.replayed": "Tämä tunnistus on jo käytetty. Aloita alusta.",
        "error.rate_limited": "Liian monta yritystä. Odota hetki ja yritä uudelleen.",
        "error.locked": "Liian monta yritystä. Pyydä uusi koodi tai tunnistaudu muulla tavalla.",
        "error.unavailable": "Palvelu ei ole juuri nyt käytettävissä. Yritä myöhemmin uudelleen.",
        "error.provider": "Tunnistuspalvelu vastasi virheellä.",
        "error.cancelled": "Tunnistus peruttiin.",
        "error.denied": "Sinulla ei ole pääsyä tälle sivulle.",
        "error.code": "Koodi on väärä tai ei ole enää voimassa. Pyydä uusi koodi.",
        "error.internal": "Tapahtui odottamaton virhe. Yritä myöhemmin uudelleen.",
        "error.not_found": "Sivua ei löytynyt.",
        "code.label": "Virhekoodi",
        "logout": "Kirjaudu ulos",
        "lang.fi": "Suomeksi",
        "lang.sv": "På svenska",
        "lang.en": "In English",
    },
    "sv": {
        "title.picker": "Identifiera dig",
        "picker.lead": "Välj hur du vill identifiera dig.",
        "picker.step_up": "Sidan kräver stark identifiering. Identifiera dig för att fortsätta.",
        "picker.banks": "Internetbank",
        "picker.other": "Andra sätt",
        "picker.link_note": (
            "Du kan också använda en personlig länk du fått, bara för den uppgiften."
        ),
        "title.bankid": "BankID",
        "bankid.choose": "Vill du använda BankID på den här enheten eller på en annan enhet?",
        "bankid.same_device": "BankID på den här enheten",
        "bankid.other_device": "BankID på en annan enhet",
        "bankid.open_app": "Öppna BankID",
        "bankid.scan": "Starta BankID-appen och skanna QR-koden.",
        "title.mobile": "Mobilcertifikat",
        "mobile.phone": "Mobilnummer",
        "mobile.submit": "Skicka begäran till telefonen",
        "mobile.compare": "Kontrollera att telefonen visar samma kod:",
        "title.wait": "Väntar på identifiering",
        "wait.pending": "Väntar…",
        "wait.cancel": "Avbryt",
        "title.webeid": "ID-kort",
        "webeid.lead": "Sätt ID-kortet i läsaren och bekräfta med PIN1.",
        "webeid.start": "Identifiera dig med ID-kort",
        "webeid.no_extension": "Webbläsartillägget Web eID hittades inte.",
        "webeid.simulator": "Använd simulatorns testkort",
        "title.autopost": "Fortsätt till din bank",
        "autopost.continue": "Fortsätt",
        "title.link": "Personlig länk",
        "link.lead": "Vi skickar en engångskod med sms till din telefon.",
        "link.send": "Skicka kod",
        "link.code_lead": "Ange koden som skickades till {phone}.",
        "link.code": "Engångskod",
        "link.verify": "Fortsätt",
        "link.resend": "Skicka en ny kod",
        "link.strong": "Identifiera dig med stark identifiering i stället",
        "link.sms_risk": "En sms-kod är svagare än stark identifiering.",
        "title.error": "Identifieringen misslyckades",
        "error.back": "Tillbaka till identifieringen",
        "error.generic": "Något gick fel. Försök igen.",
        "error.invalid": "Begäran var inte giltig. Börja om.",
        "error.expired": "Identifieringen gick ut. Börja om.",
        "error.replayed": "Identifieringen har redan använts. Börja om.",
        "error.rate_limited": "För många försök. Vänta en stund och försök igen.",
        "error.locked": "För många försök. Begär en ny kod eller identifiera dig på annat sätt.",
        "error.unavailable": "Tjänsten är tillfälligt otillgänglig. Försök igen senare.",
        "error.provider": "Identifieringstjänsten svarade med ett fel.",
        "error.cancelled": "Identifieringen avbröts.",
        "error.denied": "Du har inte åtkomst till den här sidan.",
        "error.code": "Koden är fel eller inte längre giltig. Begär en ny kod.",
        "error.internal": "Ett oväntat fel inträffade. Försök igen senare.",
        "error.not_found": "Sidan hittades inte.",
        "code.label": "Felkod",
        "logout": "Logga ut",
        "lang.fi": "Suomeksi",
        "lang.sv": "På svenska",
        "lang.en": "In English",
    },
}


def translate(language: str, key: str, **values: str) -> str:
    """The text of ``key`` in ``language`` (English, then the key, as fallbacks)."""
    text = MESSAGES.get(language, {}).get(key) or MESSAGES["en"].get(key) or key
    return text.format(**values) if values else text


def negotiate(
    explicit: str | None,
    accept_language: str | None,
    default: str = "en",
    supported: Iterable[str] = LANGUAGES,
) -> str:
    """``?lang=`` wins, then the first supported tag of ``Accept-Language``."""
    allowed = [lang for lang in supported if lang in MESSAGES]
    if explicit and explicit in allowed:
        return explicit
    for part in (accept_language or "").split(",")[:20]:
        tag = part.split(";", 1)[0].strip().lower()[:2]
        if tag in allowed:
            return tag
    return default if default in allowed else "en"
