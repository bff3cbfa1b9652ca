"""Strict base64url and JSON decoding, and the bounded header cache.

Everything from a token is decoded here first: canonical unpadded base64url only
(RFC 4648 §3.5), strict UTF-8 JSON objects without duplicate members or NaN, with
bounded depth and size (JOSE-05, JOSE-14), so one spelling of a token exists.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from json.scanner import make_scanner
from typing import Any, Final, cast

from ...errors import (
    InvalidInput,
)
from .limits import (
    MAX_HEADER_CHARS,
    MAX_JSON_DEPTH,
    MAX_JSON_NODES,
)

_JWS_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_JWE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){4}")
_B64URL_AND_DOT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def _is_compact(token: str, parts: int) -> bool:
    """True if ``token`` is ``parts`` base64url segments joined by dots, the first non-empty.

    The same language as ``_JWS_RE`` / ``_JWE_RE`` (JOSE-05), checked with two C-level
    passes instead of a regex walk: this runs on every token on the RP's hot path.
    """
    return (
        token.isascii()
        and token.count(".") == parts - 1
        and not token.startswith(".")
        and not token.encode("ascii").translate(None, _B64URL_AND_DOT)
    )


# Last character of a canonical unpadded base64url string whose length is 2 or 3 mod 4:
# the unused low bits must be zero (RFC 4648 §3.5), so a token has one spelling.
_B64_LAST_OK = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
#: base64url to the standard alphabet (RFC 4648 §5 -> §4) for ``binascii``. The
#: standard-only characters "+", "/" and "=" become "*", which no alphabet has, so
#: ``strict_mode`` refuses them: the decoder itself is the alphabet check.
_B64_TO_STD = bytes.maketrans(b"-_+/=", b"+/***")
_PAD = (b"", b"===", b"==", b"=")  # by len(segment) % 4; 1 always fails to decode
_B64URL = _B64URL_AND_DOT[:-1]


# --- small helpers ----------------------------------------------------------------------


def _b64d(segment: str) -> bytes:
    """Strict base64url decode: unpadded, canonical, nothing outside the alphabet.

    A character outside the base64url alphabet (RFC 4648 §5) is ``malformed``, as
    in :func:`_is_compact`; a length of 1 mod 4 or unused low bits that are not zero
    (RFC 4648 §3.5: a second spelling of the same bytes) are ``bad_encoding``.
    ``binascii.a2b_base64`` in ``strict_mode`` refuses everything else outside the
    alphabet (Python 3.11, https://docs.python.org/3/library/binascii.html).
    """
    rem = len(segment) & 3
    try:
        std = segment.encode("ascii").translate(_B64_TO_STD)
        data = binascii.a2b_base64(std + _PAD[rem], strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        # Only base64url characters but refused: a length of 1 mod 4.
        alphabet_only = segment.isascii() and not segment.encode().translate(None, _B64URL)
        raise InvalidInput(
            "token segment is not base64url",
            code="bad_encoding" if alphabet_only else "malformed",
        ) from exc
    if rem and segment[-1] not in _B64_LAST_OK[rem]:
        raise InvalidInput("token segment is not canonical base64url", code="bad_encoding")
    return data


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")  # RFC 7519 §4 / JOSE-14
    return obj


def _bad_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_dupes, parse_constant=_bad_constant, parse_float=_finite_float
)


def _check_shape(value: Any) -> None:
    """Bound nesting and size of parsed JSON (JOSE-05: depth and claim count)."""
    if (
        type(value) is dict
        and len(value) <= MAX_JSON_NODES
        and not any(type(v) in (dict, list) for v in value.values())
    ):
        return  # flat object: the common case, nothing to walk
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput("JSON nested too deeply", code="json_too_deep")
        if isinstance(item, dict):
            nodes += len(item)
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            nodes += len(item)
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
        if nodes > MAX_JSON_NODES:
            raise InvalidInput("JSON has too many members", code="json_too_large")


#: The scanner ``_DECODER.decode`` runs (C, same hooks), called directly: ``decode``
#: first and last matches a whitespace regex, which compact JOSE JSON never needs.
#: (typeshed types its argument as a scanner; it reads the decoder's attributes.)
_SCAN: Final = make_scanner(cast(Any, _DECODER))


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Strict UTF-8 JSON object: no BOM, duplicates, NaN; bounded depth and size."""
    try:
        text = raw.decode("utf-8")
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # no value at 0: leading whitespace, BOM, empty text
            end = -1
        if end != len(text):
            # Surrounding whitespace (allowed, RFC 8259 §2) or not JSON: the full
            # decoder accepts the one and names the other.
            value = _DECODER.decode(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not valid JSON", code="bad_json") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object", code="bad_json")
    if raw.find(b"{", 1) < 0 and b"[" not in raw:
        # The object's own "{" first and no other "{" or "[" in the text: a flat
        # object (brackets inside strings only send a token down the full walk).
        # Bounding its size is all.
        if len(value) > MAX_JSON_NODES:
            raise InvalidInput("JSON has too many members", code="json_too_large")
        return value
    _check_shape(value)
    return value


#: Parsed headers by their exact encoded form. One issuer signs thousands of tokens
#: with the same few headers, so this removes a base64 + JSON parse from the hot path.
#: Keyed by the full string, so a hit is exactly what a parse would return; bounded,
#: and cleared wholesale when full so a flood of distinct headers costs nothing extra.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_SIZE: Final = 256


def _parse_header(h64: str) -> dict[str, Any]:
    cached = _HEADER_CACHE.get(h64)
    if cached is not None:
        return dict(cached)  # callers get their own copy
    if len(h64) > MAX_HEADER_CHARS:
        raise InvalidInput("token header exceeds the size limit", code="too_large")
    header = _json_object(_b64d(h64), "token header")
    if any(isinstance(v, dict | list) for v in header.values()):
        return header  # nested members could be mutated through a shallow copy
    if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[h64] = header
    return dict(header)
