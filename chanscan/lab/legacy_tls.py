"""Live legacy TLS: a tlslite-ng server speaking what Debian's OpenSSL 3 no longer
serves (SSL 3.0, RC4, and 3DES alongside TLS 1.0), in front of a plaintext lab
server, so the SSLv3 / RC4 / SWEET32 findings and fingerprinting of an ESXi 5.5-like
host are tested end to end rather than only table-driven.

tlslite-ng (https://github.com/tlsfuzzer/tlslite-ng, LGPL) is pure Python and
blocking: each accepted connection gets a thread that runs the handshake with
``TLSConnection.handshakeServer``, then relays the decrypted bytes to
``address:backend_port``. Everything is bounded by socket timeouts, and ``stop()``
closes the listener and every open connection.

ESXi 5.5 (VMware KB 2139396 and the 5.5 U3b release notes) offered SSL 3.0 and
TLS 1.0 with RC4 and 3DES among its suites until 5.5 U3b, behind a self-signed
RSA certificate with ``OU=VMware ESX Server Default Certificate``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from chanscan.lab.certs import Issued, new_key, self_signed
from chanscan.lab.core import Handle, Lab, require_loopback

_IO_TIMEOUT = 10.0  # one read or write on a lab connection
_RELAY_LIMIT = 30.0  # a whole relayed connection
_ESXI_OU = "VMware ESX Server Default Certificate"


@dataclass(frozen=True)
class LegacyProfile:
    """What the tlslite-ng server negotiates (tlslite-ng's own names)."""

    min_version: tuple[int, int] = (3, 0)  # SSL 3.0
    max_version: tuple[int, int] = (3, 1)  # TLS 1.0
    ciphers: tuple[str, ...] = ("rc4", "3des", "aes128")
    key_exchange: tuple[str, ...] = ("rsa",)  # static RSA, as 2013 appliances did
    macs: tuple[str, ...] = ("sha", "md5")


ESXI_55 = LegacyProfile()


def esxi55_certificate() -> Issued:
    """RSA-1024, as ESXi 5.5's generated default certificate."""
    return self_signed("esxi55.lab.invalid", key=new_key("rsa", 1024), org_unit=_ESXI_OU, days=365)


def _import_tlslite() -> None:
    # tlslite/__init__ imports its asyncore integration, deprecated since Python 3.6:
    # a warning about tlslite's packaging, not about anything the lab does.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tlslite  # noqa: F401


def _settings(profile: LegacyProfile) -> object:
    _import_tlslite()
    from tlslite.handshakesettings import HandshakeSettings

    settings = HandshakeSettings()
    settings.minVersion = profile.min_version
    settings.maxVersion = profile.max_version
    # What a supported_versions extension is answered from (RFC 8446 4.2.1); without
    # it tlslite-ng would pick TLS 1.2 for a modern hello whatever maxVersion says.
    settings.versions = [
        v
        for v in [(3, 4), (3, 3), (3, 2), (3, 1), (3, 0)]
        if profile.min_version <= v <= profile.max_version
    ]
    settings.cipherNames = list(profile.ciphers)
    settings.keyExchangeNames = list(profile.key_exchange)
    settings.macNames = list(profile.macs)
    # tlslite-ng refuses keys below its own floor unless told otherwise.
    settings.minKeySize = 512
    return settings


def _relay(tls: object, sock: socket.socket, backend: socket.socket) -> None:
    """Copy bytes both ways until either side closes (bounded by _RELAY_LIMIT).
    ``sock`` is the raw socket under ``tls``: readable means a record is coming (a
    lab exchange is one request and one answer, so tlslite-ng never holds a second
    record back while select waits)."""
    import time

    end = time.monotonic() + _RELAY_LIMIT
    while time.monotonic() < end:
        ready, _, _ = select.select([sock, backend], [], [], 1.0)
        for r in ready:
            if r is backend:
                data = backend.recv(65536)
                if not data:
                    return
                tls.write(data)  # type: ignore[attr-defined]
            else:
                got = tls.read(max=65536)  # type: ignore[attr-defined]
                if not got:
                    return
                backend.sendall(got)


def tlslite_server(
    lab: Lab,
    address: str,
    port: int,
    backend_port: int,
    *,
    profile: LegacyProfile = ESXI_55,
    cert: Issued | None = None,
    name: str = "tlslite-legacy",
) -> Handle:
    """A tlslite-ng TLS server on ``address:port`` relaying to the plaintext server on
    ``address:backend_port``; stopped (listener and connections) by its handle."""
    _import_tlslite()
    from tlslite.tlsconnection import TLSConnection
    from tlslite.utils.keyfactory import parsePEMKey
    from tlslite.x509 import X509
    from tlslite.x509certchain import X509CertChain

    require_loopback(address)
    issued = cert or esxi55_certificate()
    x509 = X509()
    x509.parse(issued.pem.decode("ascii"))
    chain = X509CertChain([x509])
    key_pem = issued.key_pem.decode("ascii")
    settings = _settings(profile)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(64)
    listener.settimeout(0.5)
    stopping = threading.Event()
    open_socks: set[socket.socket] = set()
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT)
        with lock:
            open_socks.add(conn)
        try:
            tls = TLSConnection(conn)
            # A key object per connection: tlslite-ng's RSA blinding factors change
            # with every decryption and are not safe to share between threads.
            key = parsePEMKey(key_pem, private=True)
            tls.handshakeServer(certChain=chain, privateKey=key, settings=settings)
            with socket.create_connection((address, backend_port), _IO_TIMEOUT) as backend:
                _relay(tls, conn, backend)
            with contextlib.suppress(Exception):
                tls.close()
        except Exception:
            # Scanners send odd hellos on purpose: a failed handshake is normal here.
            pass
        finally:
            with lock:
                open_socks.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def accept_loop() -> None:
        while not stopping.is_set():  # until stop()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=serve, args=(conn,), daemon=True, name=f"{name}-conn")
            threads.append(t)
            t.start()
            threads[:] = [x for x in threads if x.is_alive()]

    acceptor = threading.Thread(target=accept_loop, daemon=True, name=f"{name}-accept")
    acceptor.start()

    def stop() -> None:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.close()
        with lock:
            socks = list(open_socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        acceptor.join(5)
        for t in list(threads):
            t.join(5)

    return lab.register(Handle(name, address, port, stop))


def esxi55_host(
    lab: Lab, address: str, port: int = 443, *, backend_port: int = 8055
) -> tuple[Handle, Sequence[object]]:
    """An ESXi 5.5-like host: the vSphere ``/sdk`` imitation (ESXi 5.5.0 build) behind
    tlslite-ng serving SSL 3.0 / TLS 1.0 with RC4, 3DES and AES-128, and an
    RSA-1024 default certificate. Returns the TLS handle and the imitation's request
    log (what the server was asked)."""
    from chanscan.lab.imitations import ESXI_55 as ABOUT_55
    from chanscan.lab.imitations import vsphere_sdk

    sdk = vsphere_sdk(lab, address, backend_port, ABOUT_55, tls=False)
    handle = tlslite_server(lab, address, port, backend_port, name="esxi55")
    return handle, sdk.requests
