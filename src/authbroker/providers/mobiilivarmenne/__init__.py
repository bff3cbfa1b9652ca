"""Mobiilivarmenne: the Finnish Mobile ID, ETSI TS 102 204 over the REST/JSON binding.

The user types a phone number; we send an ``MSS_SignatureReq`` asking the user's
operator (HMSSP, through our acquiring entity) to have the SIM sign a fresh random
challenge. The browser and the phone both show the same short event id so the user
can tell our request from someone else's. In the recommended asynchronous
client-server mode the request returns ``100 REQUEST_OK`` at once and we poll with
``MSS_StatusReq`` until the signature (``500``/``502``) or a fault arrives.

Protocol facts ("MID §3.x" below): the FiCom "Mobile Signature Service implementation
guideline" 2.1 (published in laverca/laverca ``docs/en/MSS_FiCom_Implementation_guideline_2.1.pdf``)
and ETSI TS 102 204, with the Kiuru REST/JSON binding (methics/laverca-rest). Section
marks: §3.1 transport and flow, §3.2 ``MSS_SignatureReq``, §3.3 signature profiles,
§3.4 additional services, §3.5 response, signature and identity, §3.6 status codes,
§3.7 the REST/JSON binding.

We never trust the MSSP's ``VALID_SIGNATURE`` verdict alone (MID §3.5, MID-03): the
returned CMS SignedData is verified here (:mod:`authbroker.crypto.cms`): the message digest
must be that of exactly the challenge we sent, the signer certificate must chain to
the configured Mobile ID CAs (no system store), be valid now and carry the key usage
the signature profile needs. The identity comes from that certificate (SATU in the
subject ``serialNumber``, names) and, where the AE has agreed to the PersonIdentity
additional service, the personal identity code (HETU) it returns.

The PersonIdentity reply is not covered by the CMS signature, so its HETU is used
only when the reply's SATU equals the SATU of the verified certificate; otherwise
the login is refused (``require_national_id``, the default: a strong personal login
needs the HETU) or, when the application opted out, has no ``national_id``. The
channel to the AE is pinned TLS (``ca_file``) outside the simulator.

Modules: :mod:`.protocol` (constants, MSISDN), :mod:`.status` (status codes)
and :mod:`.provider` (the adapter). Import the public
names from this package.
"""

from __future__ import annotations

from .protocol import (
    ADDITIONAL_SERVICE,
    MSS_FORMAT_PKCS7,
    PERSON_ID,
    SIGNATURE_PROFILES,
    normalize_msisdn,
)
from .provider import CONFIG_OPTIONS, MobiilivarmenneProvider, from_config
from .status import STATUS, StatusInfo, status_error

__all__ = [
    "ADDITIONAL_SERVICE",
    "CONFIG_OPTIONS",
    "MSS_FORMAT_PKCS7",
    "PERSON_ID",
    "SIGNATURE_PROFILES",
    "STATUS",
    "MobiilivarmenneProvider",
    "StatusInfo",
    "from_config",
    "normalize_msisdn",
    "status_error",
]
