"""TUPAS message fields and MACs (Federation of Finnish Financial Services, TUPAS v2.3)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from ...errors import (
    InvalidInput,
)

#: Request fields in MAC order (TUPAS §1.2); ``A01Y_MAC`` follows them.
REQUEST_FIELDS: tuple[str, ...] = (
    "A01Y_ACTION_ID",
    "A01Y_VERS",
    "A01Y_RCVID",
    "A01Y_LANGCODE",
    "A01Y_STAMP",
    "A01Y_IDTYPE",
    "A01Y_RETLINK",
    "A01Y_CANLINK",
    "A01Y_REJLINK",
    "A01Y_KEYVERS",
    "A01Y_ALG",
)
#: Mandatory response fields in MAC order (TUPAS §1.4, fields 1-9).
RESPONSE_FIELDS: tuple[str, ...] = (
    "B02K_VERS",
    "B02K_TIMESTMP",
    "B02K_IDNBR",
    "B02K_STAMP",
    "B02K_CUSTNAME",
    "B02K_KEYVERS",
    "B02K_ALG",
    "B02K_CUSTID",
    "B02K_CUSTTYPE",
)
#: Optional response fields 10-11: part of the MAC only when non-empty (TUPAS §1.4).
RESPONSE_OPTIONAL_FIELDS: tuple[str, ...] = ("B02K_USERID", "B02K_USERNAME")
_ALL_RESPONSE_FIELDS = frozenset((*RESPONSE_FIELDS, *RESPONSE_OPTIONAL_FIELDS, "B02K_MAC"))

#: ``A01Y_ALG`` / ``B02K_ALG`` codes (TUPAS §1.3). Unknown codes are refused, never
#: defaulted (one public library silently treats them as SHA-1).
ALGORITHMS: Mapping[str, str] = {"01": "md5", "02": "sha1", "03": "sha256"}
LEGACY_ALGORITHMS = frozenset({"01", "02"})
_MAC_LENGTH = {"01": 32, "02": 40, "03": 64}

#: Query parameter added to the three return links so the callback knows which one
#: the bank used (the links themselves are part of the request MAC).
RESULT_PARAM = "tupas"

_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_SATU_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"

#: Maximum lengths of response values (TUPAS §1.4; CUSTID/USERID 64 since 2.3).
_MAX_LENGTH = {
    "B02K_VERS": 4,
    "B02K_TIMESTMP": 23,
    "B02K_IDNBR": 10,
    "B02K_STAMP": 20,
    "B02K_CUSTNAME": 40,
    "B02K_KEYVERS": 4,
    "B02K_ALG": 2,
    "B02K_CUSTID": 64,
    "B02K_CUSTTYPE": 2,
    "B02K_USERID": 64,
    "B02K_USERNAME": 40,
    "B02K_MAC": 64,
}

_SECRET_KEY = re.compile(r"secret_v([0-9]{1,4})(?:_env)?")


def compute_mac(
    values: Sequence[str], secret: str, algorithm: str, *, charset: str = "iso-8859-1"
) -> str:
    """The TUPAS MAC: ``v1&v2&...&vn&SECRET&`` hashed, upper-case hex (TUPAS §1.3).

    ``algorithm`` is the two-digit ALG code. Raises :class:`InvalidInput` for unknown
    codes and for values the bank character set cannot carry.
    """
    name = ALGORITHMS.get(algorithm)
    if name is None:
        raise InvalidInput("unknown TUPAS MAC algorithm", code="tupas_alg")
    text = "&".join([*values, secret]) + "&"
    try:
        data = text.encode(charset)
    except (UnicodeEncodeError, LookupError) as exc:
        raise InvalidInput("TUPAS value not representable in the bank charset") from exc
    return hashlib.new(name, data, usedforsecurity=True).hexdigest().upper()


def response_mac_values(params: Mapping[str, str]) -> list[str]:
    """Response values in MAC order: fields 1-9, then 10-11 only when non-empty."""
    values = [params.get(name, "") for name in RESPONSE_FIELDS]
    values += [params[n] for n in RESPONSE_OPTIONAL_FIELDS if params.get(n)]
    return values


def is_valid_satu(value: str) -> bool:
    """SATU (sähköinen asiointitunnus): 8 digits + the HETU-style mod-31 check char."""
    if len(value) != 9 or not value[:8].isascii() or not value[:8].isdigit():
        return False
    return _SATU_ALPHABET[int(value[:8]) % 31] == value[8]


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
