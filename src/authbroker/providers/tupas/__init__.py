"""TUPAS: the Finnish banks' legacy identification message protocol.

The service provider (us) has the browser POST an ``A01Y_*`` form to the bank; after
the user logs in, the bank sends the browser back to one of three return links
(success, cancel, reject) with a ``B02K_*`` "Tupas certificate" in the query string,
protected by a MAC keyed with a secret shared between the bank and us.

Protocol facts (field order, MAC construction, CUSTTYPE codes) follow the FK
"TUPAS Identification Service for Service Providers" 2.3c/2.4 (Federation of Finnish
Financial Services; read through public excerpts, e.g. https://studylib.net/doc/18346343,
and the field tables of tuutti/php-tupas and reaktor/node-tupas). Section marks below:
TUPAS §1.2 request message, §1.3 MAC, §1.4 response message, §1.5 CUSTTYPE codes,
§1.6 IDTYPE values, §1.7 bank table, §1.8 test vectors.

What this module enforces (security requirements TUP-01..05):

* the response MAC is recomputed over the exact field sequence with the secret of
  the *returned* key version and compared in constant time; unknown key versions,
  unknown algorithms and, unless the bank profile sets ``allow_legacy_algorithms``,
  MD5/SHA-1 are refused;
* the request stamp is unique (reserved in the store when issued), must come back
  unchanged, and is consumed once (``put_if_absent`` replay cache);
* version, bank number, timestamp freshness, field presence, length and character
  checks; unknown ``B02K_*`` fields are refused;
* cancel and reject return links become :class:`UserCancelled` / :class:`ProviderError`.

The response arrives in the callback URL's query (security decision 11: it carries
the personal identity code), so nothing here ever logs parameters or URLs.

Modules: :mod:`.mac` (fields and MACs) and :mod:`.provider` (the adapter). Import the public
names from this package.
"""

from __future__ import annotations

from .mac import (
    ALGORITHMS,
    LEGACY_ALGORITHMS,
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    RESPONSE_OPTIONAL_FIELDS,
    RESULT_PARAM,
    compute_mac,
    is_valid_satu,
    response_mac_values,
)
from .provider import CONFIG_OPTIONS, TupasProvider, from_config

__all__ = [
    "ALGORITHMS",
    "CONFIG_OPTIONS",
    "LEGACY_ALGORITHMS",
    "REQUEST_FIELDS",
    "RESPONSE_FIELDS",
    "RESPONSE_OPTIONAL_FIELDS",
    "RESULT_PARAM",
    "TupasProvider",
    "compute_mac",
    "from_config",
    "is_valid_satu",
    "response_mac_values",
]
