"""A simulated TUPAS bank: the bank side of the ``A01Y``/``B02K`` message exchange.

The bank's identification form endpoint (``POST /tupas``) takes the browser's
``A01Y_*`` form, checks every field and the request MAC exactly as a bank would
(TUPAS §1.2-1.3, section marks as in :mod:`authbroker.providers.tupas`), "logs the
user in" as a chosen test customer and redirects the browser to the return link with
a correctly MAC'd ``B02K_*`` response (TUPAS §1.4). A tiny HTML page lets a person pick the customer
when :attr:`BankControl.interactive` is set (demo, CLI).

Tests make it misbehave through :class:`BankControl`: tamper with one response field
after the MAC was computed, backdate the timestamp, answer with a legacy algorithm
or an unknown key version, replay an earlier response, or use the cancel/reject
links. The server never logs request lines (they carry identity codes).
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from ...config import ProviderConfig, Settings
from ...errors import AuthBrokerError
from ...providers.tupas import (
    ALGORITHMS,
    REQUEST_FIELDS,
    TupasProvider,
    compute_mac,
    response_mac_values,
)
from ..registry import RunningSimulator
from .server import SimRequest, SimResponse, serve

__all__ = ["CUSTOMERS", "BankControl", "TestCustomer", "TupasBank", "start"]


@dataclass(frozen=True, slots=True)
class TestCustomer:
    """A bank customer of the simulator (all identifiers are test values)."""

    key: str
    name: str
    custtype: str
    custid: str
    userid: str = ""
    username: str = ""


#: Test customers. HETUs use the temporary/test individual numbers 900-999; the
#: business id and SATU are checksum-valid test values.
CUSTOMERS: Mapping[str, TestCustomer] = {
    c.key: c
    for c in (
        TestCustomer("anna", "DEMO ANNA", "01", "010170-960F"),
        # A name with ä/ö/å: banks send it percent-encoded in ISO-8859-1 (M%C4KI...).
        TestCustomer("aakkoset", "MÄKI-ÖSTERGÅRD ÅSA", "01", "020280-900K"),
        TestCustomer("ville", "TESTI VILLE", "01", "150485-914A"),
        TestCustomer("company", "TESTIYRITYS OY", "03", "1234567-1"),
        TestCustomer("satu", "TESTI SATU", "04", "999020016"),
        TestCustomer("corporate", "TESTIYRITYS OY", "08", "1234567-1", "081181-9984", "TESTI ANNA"),
        TestCustomer("truncated", "TESTI ANNA", "02", "9984"),
        TestCustomer("notfound", "TUNTEMATON", "00", "0"),
    )
}


@dataclass
class BankControl:
    """Switches tests flip to make the bank misbehave (reset with :meth:`reset`)."""

    action: str = "approve"  # approve | cancel | reject
    customer: str = "anna"
    tamper: str | None = None  # B02K field changed after the MAC was computed
    age: float = 0.0  # seconds to backdate B02K_TIMESTMP
    alg: str | None = None  # answer with this ALG (MAC computed with it)
    key_version: str | None = None  # answer claiming this key version
    bank_number: str | None = None  # answer as another bank
    stamp: str | None = None  # answer with another stamp
    replay: bool = False  # answer with the previous response again
    interactive: bool = False  # show a page to choose the customer

    def reset(self) -> None:
        fresh = BankControl()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


def _flip(value: str) -> str:
    """A different value of the same shape (so only the MAC can notice)."""
    if not value:
        return "X"
    last = value[-1]
    if last.isdigit():
        repl = str((int(last) + 1) % 10)
    elif last.isalpha():
        repl = "B" if last.upper() != "B" else "C"
    else:
        repl = "0"
    return value[:-1] + repl


class TupasBank:
    """The bank: validates requests, issues responses, remembers what it sent."""

    def __init__(
        self,
        *,
        bank_number: str,
        version: str,
        rcvid: str,
        secrets_by_version: Mapping[str, str],
        charset: str = "iso-8859-1",
        timezone: str = "Europe/Helsinki",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.bank_number = bank_number
        self.version = version
        self.rcvid = rcvid
        self.secrets = dict(secrets_by_version)
        self.charset = charset
        self.tz = ZoneInfo(timezone)
        self.now = now
        self.control = BankControl()
        self.customers: dict[str, TestCustomer] = dict(CUSTOMERS)
        #: Every response issued (B02K fields), newest last.
        self.responses: list[dict[str, str]] = []
        #: Reasons of refused requests, newest last (no request data in them).
        self.refused: list[str] = []
        self._seq = 0
        self._lock = threading.Lock()

    # -- request side -------------------------------------------------------------

    def check_request(self, form: Mapping[str, str]) -> str | None:
        """The reason a bank would refuse this ``A01Y`` form, or None when it is fine."""
        missing = [n for n in (*REQUEST_FIELDS, "A01Y_MAC") if not form.get(n)]
        if missing:
            return "missing field"
        if form["A01Y_ACTION_ID"] != "701":
            return "bad ACTION_ID"
        if form["A01Y_VERS"] != self.version:
            return "bad VERS"
        if form["A01Y_RCVID"] != self.rcvid:
            return "unknown RCVID"
        if form["A01Y_LANGCODE"] not in ("FI", "SV", "EN"):
            return "bad LANGCODE"
        stamp = form["A01Y_STAMP"]
        if len(stamp) != 20 or not stamp.isdigit():
            return "bad STAMP"
        if len(form["A01Y_IDTYPE"]) != 2 or not form["A01Y_IDTYPE"].isdigit():
            return "bad IDTYPE"
        for name in ("A01Y_RETLINK", "A01Y_CANLINK", "A01Y_REJLINK"):
            link = form[name]
            if len(link) > 199 or urlsplit(link).scheme not in ("http", "https"):
                return f"bad {name[5:]}"
        secret = self.secrets.get(form["A01Y_KEYVERS"])
        if secret is None:
            return "unknown KEYVERS"
        alg = form["A01Y_ALG"]
        if alg not in ALGORITHMS:
            return "bad ALG"
        try:
            expected = compute_mac(
                [form[n] for n in REQUEST_FIELDS], secret, alg, charset=self.charset
            )
        except AuthBrokerError:
            return "bad characters"
        if not hmac.compare_digest(expected.encode(), form["A01Y_MAC"].upper().encode()):
            return "bad MAC"
        return None

    # -- response side ------------------------------------------------------------

    def response(self, form: Mapping[str, str], customer: TestCustomer) -> dict[str, str]:
        """A ``B02K`` response to a valid request, shaped by :attr:`control`."""
        c = self.control
        with self._lock:
            self._seq += 1
            seq = self._seq
        local = datetime.fromtimestamp(self.now() - c.age, UTC).astimezone(self.tz)
        alg = c.alg or form["A01Y_ALG"]
        keyvers = c.key_version or form["A01Y_KEYVERS"]
        fields = {
            "B02K_VERS": self.version,
            "B02K_TIMESTMP": f"{c.bank_number or self.bank_number}"
            f"{local.strftime('%Y%m%d%H%M%S')}{seq % 10**6:06d}",
            "B02K_IDNBR": f"{secrets.randbelow(10**10):010d}",
            "B02K_STAMP": c.stamp or form["A01Y_STAMP"],
            "B02K_CUSTNAME": customer.name,
            "B02K_KEYVERS": keyvers,
            "B02K_ALG": alg,
            "B02K_CUSTID": customer.custid,
            "B02K_CUSTTYPE": customer.custtype,
        }
        if customer.userid:
            fields["B02K_USERID"] = customer.userid
        if customer.username:
            fields["B02K_USERNAME"] = customer.username
        secret = self.secrets.get(keyvers) or self.secrets[form["A01Y_KEYVERS"]]
        fields["B02K_MAC"] = compute_mac(
            response_mac_values(fields), secret, alg, charset=self.charset
        )
        if c.tamper:
            fields[c.tamper] = _flip(fields.get(c.tamper, ""))
        return fields

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path != "/tupas":
            return SimResponse(404, b"not found")
        if req.method != "POST":  # the form endpoint exists; it takes POST only
            return SimResponse(405, b"method not allowed", {"Allow": "POST"})
        form = req.form()
        reason = self.check_request(form)
        if reason is not None:
            with self._lock:
                self.refused.append(reason)
            return SimResponse.html(
                f"<!doctype html><title>TUPAS</title><p>Request refused: {html.escape(reason)}</p>",
                400,
            )
        action = form.get("sim_action") or self.control.action
        if self.control.interactive and "sim_action" not in form:
            return SimResponse.html(self._page(form))
        if action == "cancel":
            return SimResponse.redirect(form["A01Y_CANLINK"])
        if action == "reject":
            return SimResponse.redirect(form["A01Y_REJLINK"])
        if self.control.replay and self.responses:
            fields = dict(self.responses[-1])
        else:
            key = form.get("sim_customer") or self.control.customer
            customer = self.customers.get(key)
            if customer is None:
                return SimResponse.redirect(form["A01Y_REJLINK"])
            fields = self.response(form, customer)
        with self._lock:
            self.responses.append(fields)
        link = form["A01Y_RETLINK"]
        sep = "&" if "?" in link else "?"
        # Values are percent-encoded in the bank's charset (ISO-8859-1 by default),
        # as the MAC is computed over those bytes: Ä becomes %C4, not UTF-8's %C3%84.
        return SimResponse.redirect(link + sep + urlencode(fields, encoding=self.charset))

    def _page(self, form: Mapping[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in form.items()
            if k.startswith("A01Y_")
        )
        options = "".join(
            f'<option value="{html.escape(c.key)}">{html.escape(c.name or c.key)}'
            f" ({html.escape(c.custtype)})</option>"
            for c in self.customers.values()
        )
        return (
            "<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>"
            f"<title>TUPAS test bank {self.bank_number}</title>"
            # Relative action: the page is the answer to POST .../tupas, on the bank's
            # own port or mounted under the demo's origin.
            f'<h1>Test bank {self.bank_number}</h1><form method="post" action="tupas">'
            f'{hidden}<label>Customer <select name="sim_customer">{options}</select></label>'
            '<button name="sim_action" value="approve">Identify</button>'
            '<button name="sim_action" value="cancel">Cancel</button>'
            '<button name="sim_action" value="reject">Reject</button></form>'
        )


def start(
    config: ProviderConfig,
    settings: Settings,
    *,
    in_process: bool = False,
    browser_url: str | None = None,
) -> RunningSimulator:
    """Start the bank of one TUPAS profile on loopback or in process (registry entry).

    ``browser_url``: where browsers reach the bank (the form is posted there by the
    browser only), when not the server's own URL (the demo serves it under its origin).
    """
    overrides: dict[str, Any] = {}
    found = TupasProvider._load_secrets(config)
    key_version = str(config.get("key_version", "0001")).zfill(4)
    if key_version not in found:
        # A deployment that runs the simulator without the profile's test secret.
        secret = secrets.token_urlsafe(24)
        found[key_version] = secret
        overrides[f"secret_v{int(key_version)}"] = secret
    bank = TupasBank(
        bank_number=str(config.get("bank_number", "000")),
        version=str(config.get("version", "0002")).zfill(4),
        rcvid=str(config.get("rcvid", "")),
        secrets_by_version=found,
        charset=str(config.get("charset", "iso-8859-1")),
        timezone=str(config.get("timestamp_timezone", "Europe/Helsinki")),
    )
    server = serve(bank.handle, in_process=in_process)
    overrides["url"] = f"{browser_url or server.url}/tupas"
    return RunningSimulator(
        overrides=overrides,
        server=server,
        handle=server.handle,
        extra={"bank": bank, "control": bank.control, "customers": bank.customers},
    )
