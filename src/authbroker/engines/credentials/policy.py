"""Password and address rules of the mobile login: canonical e-mail addresses,
password normalisation, the blocklist, :class:`PasswordPolicy` (NIST SP 800-63B-4
§3.1.1.2, https://pages.nist.gov/800-63-4/sp800-63b.html) and the argon2id
parameters (OWASP Password Storage Cheat Sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html).

Pure functions and values, no I/O: the credential engine calls them (the CPU-heavy
ones through ``offload``).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Final

from argon2 import PasswordHasher, Type

from ...errors import ConfigError, InvalidInput

__all__ = [
    "MAX_EMAIL_CHARS",
    "MAX_RAW_PASSWORD_CHARS",
    "OWASP_ARGON2_ROWS",
    "SEPARATORS",
    "Argon2Params",
    "Blocklist",
    "PasswordPolicy",
    "canonical_email",
    "normalize_password",
]

#: Refused before any normalisation, so NFKC (which can expand text ~18x) and
#: hashing stay bounded whatever a client sends.
MAX_RAW_PASSWORD_CHARS: Final = 4096
MAX_EMAIL_CHARS: Final = 254  # RFC 5321 §4.5.3.1.3 path limit minus the brackets

# --- canonical forms ---------------------------------------------------------------------


def canonical_email(email: str) -> str:
    """NFKC + casefold; :class:`InvalidInput` ``email_invalid`` if unusable.

    The canonical form must be stable under a round trip through upper case: an
    address such as ``jöhn@gıthub.com`` (dotless ı) is refused rather than risking a
    collision with another address in some other layer (security requirements C22).
    """
    if not isinstance(email, str) or len(email) > 4 * MAX_EMAIL_CHARS:
        raise InvalidInput("e-mail address is not valid", code="email_invalid")
    canonical = unicodedata.normalize("NFKC", email.strip()).casefold()
    stable = unicodedata.normalize("NFKC", canonical.upper()).casefold()
    local, at, domain = canonical.rpartition("@")
    if (
        stable != canonical
        or not at
        or not local
        or "." not in domain.strip(".")
        or domain.startswith(".")
        or domain.endswith(".")
        or len(canonical) > MAX_EMAIL_CHARS
        or "@" in local
        or any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in canonical)
    ):
        raise InvalidInput("e-mail address is not valid", code="email_invalid")
    return canonical


def normalize_password(password: str) -> str:
    """NFKC form of a password (63B-4 §3.1.1.2: normalise before hashing).

    :class:`InvalidInput` when it is not a string, is absurdly long or contains
    lone surrogates (it could not be encoded as UTF-8).
    """
    if not isinstance(password, str):
        raise InvalidInput("password must be text", code="password_invalid")
    if len(password) > MAX_RAW_PASSWORD_CHARS:
        raise InvalidInput("password is too long", code="password_too_long")
    normalized = unicodedata.normalize("NFKC", password)
    try:
        normalized.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("password contains invalid characters", code="password_invalid") from exc
    return normalized


# --- blocklist ---------------------------------------------------------------------------

SEPARATORS = re.compile(r"[\s._\-+,;:]+")
# Leading and trailing non-letters (Unicode letters: [^\W\d_]).
_AFFIX = re.compile(r"^([\W\d_]*)(.*?)([\W\d_]*)$", re.DOTALL)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop")


def _is_run(text: str) -> bool:
    """One repeated character, or consecutive code points up or down (``abcd``,
    ``9876``), also wrapping ``0123456789012``; or a slice of a keyboard row."""
    if len(text) <= 1:
        return True
    if len(set(text)) == 1:
        return True
    if text.isdigit():
        steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(text)}
        if steps in ({1}, {9}):
            return True
    diffs = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    if diffs in ({1}, {-1}):
        return True
    return any(text in row or text in row[::-1] for row in _KEYBOARD_ROWS)


def _trivial_affix(text: str) -> bool:
    """Digits/symbols a person typically bolts onto a word: a run, a year, a short
    number, a little punctuation, or a combination of two of those."""
    if not text or _is_run(text) or _is_repeat(text):
        return True
    digits = "".join(ch for ch in text if ch.isdigit())
    others = "".join(ch for ch in text if not ch.isdigit())
    return (len(others) <= 3 or _is_run(others) or _is_repeat(others)) and (
        len(digits) <= 4 or _is_run(digits) or _is_repeat(digits)
    )


def _is_repeat(text: str) -> bool:
    """Made of one unit of at most half its length repeated (``abcabcabc``)."""
    n = len(text)
    return any(n % k == 0 and text[:k] * (n // k) == text for k in range(1, n // 2 + 1))


class Blocklist:
    """Whole-password blocklist (PWD-03) with the common manglings of its entries.

    An entry matches after NFKC + casefold, with separators removed, and with
    "leetspeak" undone; it also matches wrapped in trivial affixes
    (``Password123456789``, ``!!dragon2024!!``), repeated (``monkeymonkeymonkey``)
    or as two entries joined (``sunshinebaseball``). Passwords that are one long
    run (``123456789012345``, ``aaaaaaaaaaaaaaa``, keyboard rows) are refused too.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(
            w for w in (unicodedata.normalize("NFKC", x).casefold().strip() for x in words) if w
        )
        self._joined = frozenset(SEPARATORS.sub("", w) for w in self.words)
        self._max = max((len(w) for w in self._joined), default=0)

    @classmethod
    @functools.cache
    def default(cls) -> Blocklist:
        """The list shipped in ``authbroker/data/common-passwords.txt`` (loaded once)."""
        text = (
            resources.files("authbroker")
            .joinpath("data/common-passwords.txt")
            .read_text(encoding="utf-8")
        )
        return cls(line for line in text.splitlines() if line and not line.startswith("#"))

    def __len__(self) -> int:
        return len(self.words)

    def _word(self, text: str, *, min_len: int = 1) -> bool:
        if len(text) < min_len:
            return False
        return text in self._joined or text.translate(_LEET) in self._joined

    def _two_words(self, text: str) -> bool:
        if len(text) > 2 * self._max:
            return False
        for cut in range(3, len(text) - 2):
            if self._word(text[:cut], min_len=3) and self._word(text[cut:], min_len=3):
                return True
        return False

    def matches(self, password: str) -> bool:
        """Whether ``password`` (already NFKC) is a listed password or a trivial variant."""
        folded = password.casefold()
        if folded.strip() in self.words:
            return True
        joined = SEPARATORS.sub("", folded)
        if not joined or _is_run(joined) or self._word(joined):
            return True
        if _is_repeat(joined):
            unit = next(
                joined[:k]
                for k in range(1, len(joined) // 2 + 1)
                if len(joined) % k == 0 and joined[:k] * (len(joined) // k) == joined
            )
            if len(unit) <= 4 or self._word(unit) or _is_run(unit):
                return True
        m = _AFFIX.match(joined)
        assert m is not None
        head, core, tail = m.groups()
        if _trivial_affix(head) and _trivial_affix(tail):
            if not core:
                return _is_run(head + tail) or _is_repeat(head + tail)
            if (
                self._word(core)
                or self._two_words(core)
                or _is_run(core)
                or (_is_repeat(core) and self._word(core[: len(core) // 2]))
            ):
                return True
        # A mangled stem with a number in the middle ("pass1234word") is left to the
        # length rule: the list targets what attackers try first.
        return self._two_words(joined)


# --- policy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """NIST SP 800-63B-4 §3.1.1.2 password rules for a single-factor password.

    ``min_length`` defaults to 15 (single-factor) and may never go below 8;
    ``max_length`` is at least 64 and defaults to 1 024 code points (bounds the
    hashing cost). ``context_words`` names the service (always refused inside a
    password), the user's e-mail local part and names are added per check.
    """

    min_length: int = 15
    max_length: int = 1024
    blocklist: Blocklist | None = field(default=None, repr=False)
    context_words: tuple[str, ...] = ("authbroker",)
    #: Names and address parts shorter than this are not checked (``Li``, ``Bo``).
    min_context_length: int = 3

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ConfigError(
                "minimum password length is never below 8", key="passwords.min_length"
            )
        if self.max_length < 64 or self.max_length < self.min_length:
            raise ConfigError(
                "maximum password length must be at least 64", key="passwords.max_length"
            )

    def _blocklist(self) -> Blocklist:
        return self.blocklist if self.blocklist is not None else Blocklist.default()

    def context(self, email: str | None, names: Iterable[str]) -> list[str]:
        """The context words for one user, case-folded."""
        words: list[str] = []
        for word in self.context_words:
            words.append(word)
        if email:
            local = email.rpartition("@")[0]
            words.append(local)
            words.extend(SEPARATORS.split(local))
        for name in names:
            words.append(name)
            words.extend(SEPARATORS.split(name))
        out: list[str] = []
        for word in words:
            folded = unicodedata.normalize("NFKC", word).casefold().strip()
            if len(folded) >= self.min_context_length and folded not in out:
                out.append(folded)
        return out

    def check(self, password: str, *, email: str | None = None, names: Iterable[str] = ()) -> str:
        """Return the NFKC password if acceptable, else :class:`InvalidInput` whose
        ``code`` says why: ``password_too_short``, ``password_too_long``,
        ``password_blocklisted``, ``password_contains_context``, ``password_invalid``."""
        normalized = normalize_password(password)
        length = len(normalized)  # code points (63B-4: each counts as one character)
        if length < self.min_length:
            raise InvalidInput(
                f"password must have at least {self.min_length} characters",
                code="password_too_short",
                details={"min_length": self.min_length},
            )
        if length > self.max_length:
            raise InvalidInput(
                f"password must have at most {self.max_length} characters",
                code="password_too_long",
                details={"max_length": self.max_length},
            )
        if not normalized.strip():
            raise InvalidInput("password cannot be only spaces", code="password_blocklisted")
        if self._blocklist().matches(normalized):
            raise InvalidInput(
                "this password is too common or was exposed in a breach; choose another",
                code="password_blocklisted",
            )
        folded = normalized.casefold()
        squeezed = SEPARATORS.sub("", folded)
        for word in self.context(email, names):
            if word in folded or SEPARATORS.sub("", word) in squeezed:
                raise InvalidInput(
                    "password must not contain your e-mail address, your name or the "
                    "name of the service",
                    code="password_contains_context",
                )
        return normalized


# --- hashing -----------------------------------------------------------------------------

#: OWASP Password Storage Cheat Sheet argon2id rows (memory KiB, iterations), p = 1.
OWASP_ARGON2_ROWS: Final = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """argon2id parameters; defaults are OWASP's m = 19 MiB, t = 2, p = 1 (PWD-04)."""

    time_cost: int = 2
    memory_cost: int = 19456  # KiB
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16
    #: Allow parameters below every OWASP row (tests only).
    insecure: bool = False

    def __post_init__(self) -> None:
        strong = any(self.memory_cost >= m and self.time_cost >= t for m, t in OWASP_ARGON2_ROWS)
        if not strong and not self.insecure:
            raise ConfigError(
                "argon2id parameters are below the OWASP minimum (m=19 MiB, t=2, p=1)",
                key="passwords.argon2",
            )
        if self.salt_len < 16 or self.hash_len < 16:
            raise ConfigError("argon2 salt and hash need at least 16 bytes", key="passwords.argon2")

    @classmethod
    def insecure_for_tests(cls, time_cost: int = 1, memory_cost: int = 64) -> Argon2Params:
        return cls(time_cost=time_cost, memory_cost=memory_cost, insecure=True)

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=self.hash_len,
            salt_len=self.salt_len,
            type=Type.ID,
        )
