"""Server-side ``ssl.SSLContext`` objects for lab servers, from ``chanscan.lab.certs``."""

from __future__ import annotations

import ssl
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from chanscan.lab.certs import Issued, LabCA


def context_for(
    leaf: Issued,
    chain: Sequence[Issued] = (),
    *,
    legacy: bool = False,
) -> ssl.SSLContext:
    """A server context presenting ``leaf`` (then ``chain``). ``legacy=True`` lowers
    OpenSSL's security level so RSA-1024 / SHA-1 certificates and TLS 1.0/1.1 load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy:
        # Everything an old appliance offered (CBC, 3DES, static RSA), but not the
        # anonymous or NULL suites no real management stack enables.
        ctx.set_ciphers("ALL:!aNULL:!eNULL:@SECLEVEL=0")
        with warnings.catch_warnings():
            # Deprecated in Python; offering TLS 1.0 is the point of a legacy server.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    with tempfile.TemporaryDirectory(prefix="chanscan-lab-") as d:
        crt, key = leaf.write(Path(d), "server", chain)
        ctx.load_cert_chain(crt, key)
    return ctx


def server_context(names: Iterable[str], ca: LabCA | None = None) -> ssl.SSLContext:
    """A modern server context with a leaf for ``names`` issued by ``ca`` (a fresh
    private CA when not given)."""
    issuer = ca or LabCA("chanscan lab root")
    return context_for(issuer.issue(*names))
