"""Covered components and the signature base of RFC 9421 (HTTP Message Signatures).

The signature base is what is actually signed: one line per covered component
(``"<identifier>": <value>``) and a final ``"@signature-params"`` line (RFC 9421 §2.5).
Signer and verifier both build it with :func:`signature_base`, so a request that
verifies is one whose covered parts arrived exactly as they were signed.

Supported component identifiers (anything else is refused, not ignored):

* derived components (§2.2): ``@method``, ``@target-uri``, ``@authority``,
  ``@scheme``, ``@request-target``, ``@path``, ``@query``, ``@query-param;name=``,
  ``@status`` (responses; kept for the RFC's response test vector);
* HTTP fields (§2.1) by lowercase name, with the ``sf``, ``key`` and ``bs``
  parameters. ``req`` and ``tr`` (request-bound response components, trailers) are
  not used by server-to-server requests and are refused.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ..errors import InvalidInput
from . import sfv

__all__ = [
    "Component",
    "Message",
    "SignatureParams",
    "component_value",
    "signature_base",
]

DERIVED = frozenset(
    {
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        "@query-param",
        "@status",
    }
)
#: Fields whose structured type is known, for the ``sf`` and ``key`` parameters
#: (RFC 9421 §2.1.1 needs the type; RFC 9530 §2, RFC 9421 §4.1/§4.2).
_DICTIONARY_FIELDS = frozenset(
    {
        "content-digest",
        "repr-digest",
        "want-content-digest",
        "want-repr-digest",
        "signature",
        "signature-input",
        "accept-signature",
    }
)
_FIELD_PARAMS = frozenset({"sf", "key", "bs"})
_UNSUPPORTED_PARAMS = frozenset({"req", "tr"})
_SIG_PARAM_NAMES = frozenset({"created", "expires", "nonce", "alg", "keyid", "tag"})
_INT_PARAMS = frozenset({"created", "expires"})
#: application/x-www-form-urlencoded leaves these unescaped (WHATWG URL §5.2), which
#: is the encoding RFC 9421 §2.2.8 prescribes for @query-param names and values.
_FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")

ParamValue = int | str | bool | bytes


@dataclass(frozen=True, slots=True)
class Component:
    """One component identifier: a name and its parameters, in order (§2)."""

    name: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    @classmethod
    def of(cls, text: str) -> Component:
        """Parse a serialized identifier such as ``"@query-param";name="Pet"``.

        A bare name (``@method``, ``content-digest``) is accepted as a shorthand.
        """
        if not text.startswith('"'):
            return cls(name=text)
        item = sfv.Item()
        try:
            item.parse(text.encode("ascii"))
        except Exception as exc:
            raise InvalidInput("bad component identifier", code="bad_component") from exc
        return cls.from_item(item)

    @classmethod
    def from_item(cls, item: Any) -> Component:
        if not isinstance(item, sfv.Item) or not sfv.is_str(item.value):
            raise InvalidInput("a covered component is not a string", code="bad_component")
        params = tuple((str(k), v) for k, v in item.params.items())
        component = cls(name=str(item.value), params=params)
        component.check()
        return component

    def param(self, name: str) -> ParamValue | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def check(self) -> None:
        """Refuse identifiers this implementation cannot evaluate unambiguously."""
        name, names = self.name, [k for k, _ in self.params]
        if len(set(names)) != len(names):
            raise InvalidInput("a component parameter is repeated", code="bad_component")
        if name.startswith("@"):
            if name not in DERIVED:
                raise InvalidInput("unknown derived component", code="unsupported_component")
            allowed = {"name"} if name == "@query-param" else set()
            if set(names) - allowed:
                raise InvalidInput("unsupported component parameter", code="unsupported_component")
            if name == "@query-param" and not sfv.is_str(self.param("name")):
                raise InvalidInput("@query-param needs a name", code="bad_component")
            return
        # §2.1: field names are lowercased; tokens only.
        if not name or name != name.lower() or not set(name) <= _TCHAR:
            raise InvalidInput("a covered field name is not lowercase", code="bad_component")
        if set(names) & _UNSUPPORTED_PARAMS or set(names) - _FIELD_PARAMS:
            raise InvalidInput("unsupported component parameter", code="unsupported_component")
        for flag in ("sf", "bs"):
            if flag in names and self.param(flag) is not True:
                raise InvalidInput("a component flag has a value", code="bad_component")
        if "key" in names and not sfv.is_str(self.param("key")):
            raise InvalidInput("the key parameter must be a string", code="bad_component")
        # §2.1.3: bs cannot be combined with sf or key.
        if "bs" in names and ("sf" in names or "key" in names):
            raise InvalidInput("bs cannot be combined with sf or key", code="bad_component")
        if ("sf" in names or "key" in names) and name not in _DICTIONARY_FIELDS:
            raise InvalidInput("structured type of the field unknown", code="unsupported_component")

    def to_item(self) -> sfv.Item:
        item = sfv.Item(self.name)
        for key, value in self.params:
            item.params[key] = value
        return item

    def serialize(self) -> str:
        return sfv.serialize_member(self.to_item(), code="bad_component")


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """The inner list of one ``Signature-Input`` member (§2.3, §4.1).

    ``params`` keeps the parameters in the order they arrived, because the
    ``@signature-params`` line must be the serialization of exactly this value.
    """

    components: tuple[Component, ...]
    params: tuple[tuple[str, int | str], ...]

    @classmethod
    def build(
        cls,
        components: Iterable[Component | str],
        *,
        created: int | None = None,
        expires: int | None = None,
        nonce: str | None = None,
        keyid: str | None = None,
        alg: str | None = None,
        tag: str | None = None,
    ) -> SignatureParams:
        comps = tuple(c if isinstance(c, Component) else Component.of(c) for c in components)
        for c in comps:
            c.check()
        values: dict[str, int | str | None] = {
            "created": created,
            "expires": expires,
            "nonce": nonce,
            "keyid": keyid,
            "alg": alg,
            "tag": tag,
        }
        return cls(comps, tuple((k, v) for k, v in values.items() if v is not None))

    @classmethod
    def from_member(cls, member: Any, *, max_components: int) -> SignatureParams:
        if not isinstance(member, sfv.InnerList):
            raise InvalidInput("a Signature-Input member is not an inner list", code="bad_input")
        if len(member) > max_components:
            raise InvalidInput("too many covered components", code="header_too_large")
        comps = tuple(Component.from_item(item) for item in member)
        params: list[tuple[str, int | str]] = []
        for name, value in member.params.items():
            if name not in _SIG_PARAM_NAMES:
                raise InvalidInput("unknown signature parameter", code="bad_parameter")
            valid = sfv.is_int(value) and value >= 0 if name in _INT_PARAMS else sfv.is_str(value)
            if not valid:
                raise InvalidInput("a signature parameter has the wrong type", code="bad_parameter")
            params.append((str(name), value))
        return cls(comps, tuple(params))

    def get(self, name: str) -> int | str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def get_int(self, name: str) -> int | None:
        value = self.get(name)
        return value if isinstance(value, int) else None

    def get_str(self, name: str) -> str | None:
        value = self.get(name)
        return value if isinstance(value, str) else None

    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def to_inner_list(self) -> sfv.InnerList:
        inner = sfv.InnerList([c.to_item() for c in self.components])
        for key, value in self.params:
            inner.params[key] = value
        return inner

    def serialize(self) -> str:
        """The ``@signature-params`` value and the ``Signature-Input`` member value."""
        return sfv.serialize_member(self.to_inner_list(), code="bad_parameter")


@dataclass(frozen=True, slots=True)
class Message:
    """What the signature base is computed over: a request (or, for the RFC's
    response vectors, a response with ``status``).

    ``headers`` are the field lines in order, names in any case; several lines of one
    field are combined as RFC 9110 §5.3 says. ``target_uri`` is absolute
    (``https://host[:port]/path?query``).
    """

    method: str = ""
    target_uri: str = ""
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = field(default=b"", repr=False)
    status: int | None = None

    def field_lines(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def header(self, name: str) -> str | None:
        lines = self.field_lines(name)
        if not lines:
            return None
        return ", ".join(line.strip(" \t") for line in lines)


def _split_target(uri: str) -> SplitResult:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidInput("the target URI is malformed", code="bad_target_uri") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        raise InvalidInput("the target URI must be absolute http(s)", code="bad_target_uri")
    if parts.fragment:
        raise InvalidInput("the target URI has a fragment", code="bad_target_uri")
    return parts


def _authority(parts: SplitResult) -> str:
    # §2.2.3: normalized per RFC 9110 §4.2.3 (lowercase host, default port omitted).
    host = parts.netloc.lower()
    port = parts.port
    if port is not None and port == _DEFAULT_PORTS[parts.scheme.lower()]:
        host = host.rsplit(":", 1)[0]
    return host


def _form_encode(text: str) -> str:
    return "".join(chr(b) if b in _FORM_SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def _query_param(parts: SplitResult, name: str) -> str:
    # §2.2.8: parse as application/x-www-form-urlencoded, re-encode name and value.
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the query string cannot be parsed", code="bad_target_uri") from exc
    values = [_form_encode(v) for k, v in pairs if _form_encode(k) == name]
    if not values:
        raise InvalidInput("a covered query parameter is missing", code="missing_field")
    if len(values) > 1:
        # §2.2.8: a repeated parameter must not be covered by name.
        raise InvalidInput("a covered query parameter is repeated", code="bad_component")
    return values[0]


def _derived_value(message: Message, component: Component) -> str:
    name = component.name
    if name == "@status":
        if message.status is None:
            raise InvalidInput("@status only applies to responses", code="bad_component")
        return f"{message.status:03d}"
    if name == "@method":
        if not message.method:
            raise InvalidInput("@method only applies to requests", code="bad_component")
        return message.method  # §2.2.1: case-sensitive, as sent
    parts = _split_target(message.target_uri)
    path = parts.path or "/"
    if name == "@target-uri":
        return message.target_uri
    if name == "@authority":
        return _authority(parts)
    if name == "@scheme":
        return parts.scheme.lower()
    if name == "@path":
        return path
    if name == "@query":
        return "?" + parts.query  # §2.2.7: a lone "?" when there is no query
    if name == "@request-target":
        return path + ("?" + parts.query if parts.query else "")
    param = component.param("name")
    assert isinstance(param, str)  # checked by Component.check
    return _query_param(parts, param)


def _field_value(message: Message, component: Component) -> str:
    lines = [line.strip(" \t") for line in message.field_lines(component.name)]
    if not lines:
        raise InvalidInput("a covered header is missing", code="missing_field")
    if component.param("bs") is True:
        # §2.1.3: each field line on its own, as a byte sequence.
        try:
            raw = [line.encode("latin-1") for line in lines]
        except UnicodeEncodeError as exc:
            raise InvalidInput("a covered header is not bytes", code="bad_field_value") from exc
        return ", ".join(f":{base64.b64encode(r).decode('ascii')}:" for r in raw)
    combined = ", ".join(lines)
    key = component.param("key")
    if component.param("sf") is True or isinstance(key, str):
        members = sfv.parse_dictionary(
            combined, code="bad_field_value", max_bytes=16384, max_members=64
        )
        if isinstance(key, str):
            # §2.1.2: the serialized value of one Dictionary member.
            if key not in members:
                raise InvalidInput("a covered dictionary key is missing", code="missing_field")
            return sfv.serialize_member(members[key], code="bad_field_value")
        # §2.1.1: the strict re-serialization of the whole field.
        reserialized = sfv.Dictionary()
        for member_key, member in members.items():
            reserialized[member_key] = member
        return sfv.serialize_member(reserialized, code="bad_field_value")
    return combined


def component_value(message: Message, component: Component) -> str:
    """The value of one covered component in ``message`` (RFC 9421 §2.1, §2.2)."""
    value = (
        _derived_value(message, component)
        if component.name.startswith("@")
        else _field_value(message, component)
    )
    # §2.5: a value that would break the line structure cannot be signed.
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) > 0x7E for ch in value):
        raise InvalidInput(
            "a covered value has control or non-ASCII characters", code="bad_field_value"
        )
    return value


def signature_base(message: Message, params: SignatureParams) -> bytes:
    """The RFC 9421 §2.5 signature base of ``message`` for ``params``."""
    lines: list[str] = []
    seen: set[str] = set()
    for component in params.components:
        identifier = component.serialize()
        if identifier in seen:
            raise InvalidInput("a component is covered twice", code="duplicate_component")
        if component.name == "@signature-params":  # pragma: no cover - refused by check()
            raise InvalidInput("@signature-params cannot be covered", code="bad_component")
        seen.add(identifier)
        lines.append(f"{identifier}: {component_value(message, component)}")
    lines.append(f'"@signature-params": {params.serialize()}')
    return "\n".join(lines).encode("ascii")
