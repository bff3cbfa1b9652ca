"""Email/password logins for the mobile apps.

A user sets up a mobile login (an e-mail address and a password) in the web UI
*after* a strong electronic identification, and the apps then log in with it to get
the tokens of :mod:`authbroker.engines.tokens`. The password is the only factor of that
login, so:

* **Setting, changing and removing** it needs a strong session (LoA substantial or
  high, not a direct-link session) whose authentication is recent (PWD-01, ASVS
  7.5.1); a strong re-authentication replaces "enter your current password".
* **Password rules** follow NIST SP 800-63B-4 §3.1.1.2 (PWD-02, PWD-03): at least 15
  characters (single-factor), up to 1 024 accepted, counted in code points after
  Unicode NFKC normalisation, no composition rules, no truncation; refused when it
  is a common/breached password (the shipped list ``data/common-passwords.txt`` and
  trivial variations of its entries) or contains the e-mail local part, the user's
  names or the service name. The refusal says why.
* **Storage** is argon2id via argon2-cffi at OWASP's parameters (m = 19 MiB, t = 2,
  p = 1; configurable, never below an OWASP row unless explicitly marked insecure
  for tests) with a 16-byte salt; after a successful login a hash made with older
  parameters is replaced transparently (PWD-04).
* **Login throttling** (PWD-05, 63B-4 §3.2.2): per account, a few free failures, then
  an exponentially growing delay, then a temporary lock; an absolute cap of
  consecutive failures (100) that only a strong-session password change or
  :meth:`CredentialManager.unlock` clears; per client IP (IPv6 by /64) a cap of
  failures per window. Counters live in the shared :mod:`authbroker.store`
  (``incr``), so they hold across application instances.
* **No user enumeration** (PWD-06): an unknown address, a wrong password and a
  removed credential end in the same error (class, message, code), and an unknown
  address still runs one argon2 verification against a dummy hash made with the
  current parameters. Throttling is keyed by the address, so a non-existent account
  throttles exactly like a real one. Addresses are compared in one canonical form
  (NFKC + case folding) and forms that are not stable under case mapping (the
  dotless ``ı`` class of collisions) are refused.

:class:`CredentialManager` is blocking; :class:`AsyncCredentialManager` runs the
database and argon2 work in a worker thread and the throttle counters on an
:class:`~authbroker.store.base.AsyncStateStore`. Both are declared faces of one
:class:`CredentialEngine` whose operations are routines (see
:mod:`authbroker.kernel`), split by concern: :mod:`.policy` (addresses, passwords,
blocklist, argon2 parameters), :mod:`.throttle` (the exact reservation logic),
:mod:`.engine` (the operations) and :mod:`.facades`.
"""

from .engine import CredentialEngine, CredentialInfo, NotifyHook
from .facades import AsyncCredentialManager, CredentialManager
from .policy import (
    Argon2Params,
    Blocklist,
    PasswordPolicy,
    canonical_email,
    normalize_password,
)
from .throttle import ThrottlePolicy

__all__ = [
    "Argon2Params",
    "AsyncCredentialManager",
    "Blocklist",
    "CredentialEngine",
    "CredentialInfo",
    "CredentialManager",
    "NotifyHook",
    "PasswordPolicy",
    "ThrottlePolicy",
    "canonical_email",
    "normalize_password",
]
