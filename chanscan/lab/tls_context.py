"""Server-side ``ssl.SSLContext`` objects for lab servers, from ``chanscan.lab.certs``.

Every lab TLS server builds its context here, so version, cipher and preference
settings are applied in one order (ciphers before the chain: OpenSSL's security level
decides whether a 1024-bit key or a SHA-1 certificate loads at all).
"""

from __future__ import annotations

import ssl
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from chanscan.lab.certs import Issued, LabCA

# Everything an old appliance offered (CBC, 3DES, static RSA), but not the anonymous
# or NULL suites no real management stack enables.
LEGACY_CIPHERS = "ALL:!aNULL:!eNULL:@SECLEVEL=0"


def context_for(
    leaf: Issued,
    chain: Sequence[Issued] = (),
    *,
    legacy: bool = False,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    server_preference: bool | None = None,
) -> ssl.SSLContext:
    """A server context presenting ``leaf`` (then ``chain``).

    ``legacy=True`` lowers OpenSSL's security level so RSA-1024 / SHA-1 certificates
    and TLS 1.0/1.1 load; ``minimum``/``maximum``/``ciphers`` override what it picks.
    ``server_preference`` None keeps Python's default (the server's order wins)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        ciphers = ciphers or LEGACY_CIPHERS
        minimum = minimum or ssl.TLSVersion.TLSv1
    with warnings.catch_warnings():
        # Deprecated in Python; offering TLS 1.0/1.1 is the point of a legacy server.
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if server_preference is True:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    elif server_preference is False:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as d:
        crt, key = leaf.write(Path(d), "server", chain)
        ctx.load_cert_chain(crt, key)
    return ctx


def server_context(names: Iterable[str], ca: LabCA | None = None) -> ssl.SSLContext:
    """A modern server context with a leaf for ``names`` issued by ``ca`` (a fresh
    private CA when not given)."""
    issuer = ca or LabCA("chanscan lab root")
    return context_for(issuer.issue(*names))
