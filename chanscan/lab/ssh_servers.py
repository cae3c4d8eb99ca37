"""SSH lab servers: real OpenSSH ``sshd`` (modern and legacy configs), asyncssh servers
with legacy algorithms, and a minimal server that speaks only the greeting.

The minimal server exists because asyncssh always advertises
``kex-strict-s-v00@openssh.com`` (``SSHConnection._get_extra_kex_algs``) and every
current OpenSSH build has the Terrapin fix, so neither can play a Terrapin-exposed
server; it sends an identification line and a KEXINIT built with asyncssh's packet
helpers, then closes (or, with ``hang=True``, holds the connection silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from chanscan.lab.core import Handle, Lab, LabError, require_loopback
from chanscan.obs.ssh import KexInit
from chanscan.probes.ssh_wire import encode_kexinit, encode_packet

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"

# OpenSSH 9.2 algorithm names (ssh -Q kex/cipher/mac/key); a modern server as the
# Mozilla OpenSSH guideline (https://infosec.mozilla.org/guidelines/openssh) would
# configure it, plus the post-quantum hybrid kex.
MODERN_SSHD = {
    "KexAlgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org,ecdh-sha2-nistp256",
    "Ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
    "aes128-gcm@openssh.com,aes256-ctr,aes128-ctr",
    "MACs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
    "HostKeyAlgorithms": "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
    "PasswordAuthentication": "no",
    "KbdInteractiveAuthentication": "no",
}

# What an old ESXi/XenServer dom0 still offers: SHA-1 and 1024-bit groups, ssh-rsa
# signatures, a DSA and a 1024-bit RSA host key, CBC, hmac-sha1/md5, passwords.
LEGACY_SSHD = {
    "KexAlgorithms": "curve25519-sha256,diffie-hellman-group14-sha256,"
    "diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1,"
    "diffie-hellman-group1-sha1",
    "Ciphers": "aes128-ctr,aes256-ctr,aes128-cbc,aes256-cbc,3des-cbc",
    "MACs": "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha1,hmac-sha1-96,hmac-md5",
    "HostKeyAlgorithms": "rsa-sha2-256,ssh-rsa,ssh-dss,ecdsa-sha2-nistp256",
    "PasswordAuthentication": "yes",
    "KbdInteractiveAuthentication": "no",
}

_MODERN_KEYS = (("ed25519", None), ("ecdsa", 256), ("rsa", 3072))
_LEGACY_KEYS = (("rsa", 1024), ("dsa", 1024), ("ecdsa", 256))


@dataclass(frozen=True)
class SshdInfo:
    """A running lab sshd: where it listens and the files a test may want to read."""

    handle: Handle
    config: Path
    host_key_files: tuple[Path, ...]


def sshd_available() -> bool:
    return os.path.exists(SSHD) and shutil.which(SSH_KEYGEN) is not None


def _keygen(path: Path, kind: str, bits: int | None) -> None:
    argv = [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "chanscan-lab", "-f", str(path)]
    if bits is not None:
        argv[4:4] = ["-b", str(bits)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    path.chmod(0o600)


def _config_text(address: str, port: int, keys: Sequence[Path], extra: dict[str, str]) -> str:
    lines = [
        f"ListenAddress {address}:{port}",
        *(f"HostKey {k}" for k in keys),
        "PidFile none",
        # Running as root in CI: PAM would need a service file, StrictModes would reject
        # the temp dir; neither is what is under test.
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin no",
        "AuthorizedKeysFile none",
        "PubkeyAuthentication yes",
        "LogLevel ERROR",
        "MaxStartups 100:30:200",
        "LoginGraceTime 20",
        *(f"{k} {v}" for k, v in extra.items()),
    ]
    return "\n".join(lines) + "\n"


def start_sshd(
    lab: Lab,
    address: str,
    port: int = 22,
    *,
    legacy: bool = False,
    name: str | None = None,
    version_addendum: bytes | None = None,
) -> SshdInfo:
    """A real OpenSSH sshd with its own config and fresh host keys in a temp dir.
    ``version_addendum`` is appended to its identification line as given, bytes that
    are not ASCII included (sshd sends ``VersionAddendum`` verbatim)."""
    require_loopback(address)
    if not sshd_available():
        raise LabError(f"{SSHD} or {SSH_KEYGEN} not installed")
    if os.geteuid() == 0:
        # sshd refuses to start without its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="chanscan-sshd-"))
    # Registered first so that it is stopped (the dir removed) after the process.
    lab.register(Handle("sshd-tmp", address, port, lambda: shutil.rmtree(tmp, ignore_errors=True)))
    keys: list[Path] = []
    for kind, bits in _LEGACY_KEYS if legacy else _MODERN_KEYS:
        path = tmp / f"ssh_host_{kind}_key"
        _keygen(path, kind, bits)
        keys.append(path)
    cfg = tmp / "sshd_config"
    text = _config_text(address, port, keys, LEGACY_SSHD if legacy else MODERN_SSHD).encode()
    if version_addendum is not None:
        text += b"VersionAddendum " + version_addendum + b"\n"
    cfg.write_bytes(text)
    check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise LabError(f"sshd rejected its config: {check.stderr.strip()[:500]}")
    # -E: log to a file, so sshd never blocks on a stderr pipe nobody reads.
    argv = [SSHD, "-D", "-f", str(cfg), "-E", str(tmp / "sshd.log")]
    handle = lab.add_process(name or ("sshd-legacy" if legacy else "sshd"), address, port, argv)
    return SshdInfo(handle, cfg, tuple(keys))


# -- asyncssh servers ---------------------------------------------------------------------

LEGACY_ASYNCSSH: dict[str, list[str]] = {
    "kex_algs": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"],
    "encryption_algs": ["arcfour256", "arcfour", "3des-cbc", "blowfish-cbc", "aes128-cbc"],
    "mac_algs": ["hmac-md5", "hmac-sha1-96", "umac-64@openssh.com", "hmac-sha1"],
    "compression_algs": ["zlib", "none"],
}


# A 2012-firmware BMC: nothing but the oldest algorithm of each kind (RFC 4253 6-8).
BMC_ASYNCSSH: dict[str, list[str]] = {
    "kex_algs": ["diffie-hellman-group1-sha1"],
    "encryption_algs": ["3des-cbc"],
    "mac_algs": ["hmac-md5"],
    "compression_algs": ["none"],
}


class _AnyAuthServer(asyncssh.SSHServer):
    """Offers password and keyboard-interactive and never accepts anything."""

    def __init__(self, password: bool, kbdint: bool) -> None:
        self._password = password
        self._kbdint = kbdint

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self._password

    def validate_password(self, username: str, password: str) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return self._kbdint

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return False


def start_asyncssh(
    lab: Lab,
    address: str,
    port: int = 22,
    *,
    name: str = "asyncssh",
    key_types: Sequence[str] = ("ssh-ed25519",),
    algs: dict[str, list[str]] | None = None,
    password: bool = False,
    kbdint: bool = False,
) -> Handle:
    """An asyncssh server on the lab loop; ``algs`` are create_server keyword lists."""
    require_loopback(address)
    host_keys = [asyncssh.generate_private_key(t) for t in key_types]
    kwargs: dict[str, Any] = dict(algs or {})

    async def start() -> Any:
        return await asyncssh.create_server(
            lambda: _AnyAuthServer(password, kbdint),
            address,
            port,
            server_host_keys=host_keys,
            reuse_address=True,
            login_timeout=20,
            **kwargs,
        )

    return lab.add_server(name, address, port, start)


def start_legacy_asyncssh(lab: Lab, address: str, port: int = 22) -> Handle:
    return start_asyncssh(
        lab,
        address,
        port,
        name="asyncssh-legacy",
        key_types=("ssh-dss", "ssh-rsa"),
        algs=LEGACY_ASYNCSSH,
        password=True,
        kbdint=True,
    )


def start_bmc_asyncssh(lab: Lab, address: str, port: int = 22) -> Handle:
    """An ancient BMC's SSH: diffie-hellman-group1-sha1, ssh-dss, 3des-cbc, hmac-md5
    only, password authentication."""
    return start_asyncssh(
        lab,
        address,
        port,
        name="asyncssh-bmc",
        key_types=("ssh-dss",),
        algs=BMC_ASYNCSSH,
        password=True,
    )


# -- greeting-only server -------------------------------------------------------------------

TERRAPIN_CHACHA = KexInit(
    kex=("curve25519-sha256", "ext-info-s"),
    host_key=("ssh-ed25519",),
    ciphers_c2s=("chacha20-poly1305@openssh.com", "aes128-ctr"),
    ciphers_s2c=("chacha20-poly1305@openssh.com", "aes128-ctr"),
    macs_c2s=("hmac-sha2-256",),
    macs_s2c=("hmac-sha2-256",),
    compression_c2s=("none",),
    compression_s2c=("none",),
)

TERRAPIN_CBC_ETM = KexInit(
    kex=("curve25519-sha256",),
    host_key=("ssh-ed25519",),
    ciphers_c2s=("aes128-cbc",),
    ciphers_s2c=("aes128-cbc",),
    macs_c2s=("hmac-sha2-256-etm@openssh.com",),
    macs_s2c=("hmac-sha2-256-etm@openssh.com",),
    compression_c2s=("none",),
    compression_s2c=("none",),
)


def start_greeting_server(
    lab: Lab,
    address: str,
    port: int,
    *,
    identification: str = "SSH-2.0-ChanscanLab_1.0",
    kexinit: KexInit | None = TERRAPIN_CHACHA,
    hang: bool = False,
    name: str = "ssh-greeting",
) -> Handle:
    """Sends ``identification`` and ``kexinit``, reads what the client sends; closes
    after the client's first packet, or holds the connection open when ``hang``."""
    require_loopback(address)
    greeting = (identification + "\r\n").encode("ascii")
    if kexinit is not None:
        greeting += encode_packet(encode_kexinit(kexinit))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readline(), 10)  # the client's identification
        if hang:
            while await reader.read(4096):  # until the client gives up
                pass

    return lab.add_stream_server(name, address, port, handler)
