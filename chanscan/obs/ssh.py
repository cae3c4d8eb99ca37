"""What the SSH probe records per endpoint (the JSON ``ssh`` object).

Names are kept exactly as the server sent them (RFC 4251 6 algorithm names), in the
server's order, so that a report can be compared line by line with ``ssh -vv``.
``not_determined`` lists the parts that could not be observed (for example
``host_key:ssh-dss`` when that family's handshake failed, or ``auth_methods``): rules
must not clear a finding because something is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"  # OpenSSH PROTOCOL, Terrapin fix
EXT_INFO_SERVER = "ext-info-s"  # RFC 8308 2.1


@dataclass(frozen=True)
class KexInit:
    """The server's SSH_MSG_KEXINIT name-lists (RFC 4253 7.1)."""

    kex: tuple[str, ...] = ()
    host_key: tuple[str, ...] = ()
    ciphers_c2s: tuple[str, ...] = ()
    ciphers_s2c: tuple[str, ...] = ()
    macs_c2s: tuple[str, ...] = ()
    macs_s2c: tuple[str, ...] = ()
    compression_c2s: tuple[str, ...] = ()
    compression_s2c: tuple[str, ...] = ()
    languages_c2s: tuple[str, ...] = ()
    languages_s2c: tuple[str, ...] = ()
    first_kex_follows: bool = False

    @property
    def strict_kex(self) -> bool:
        return STRICT_KEX_SERVER in self.kex

    @property
    def ext_info(self) -> bool:
        return EXT_INFO_SERVER in self.kex

    def ciphers(self) -> tuple[str, ...]:
        return _union(self.ciphers_c2s, self.ciphers_s2c)

    def macs(self) -> tuple[str, ...]:
        return _union(self.macs_c2s, self.macs_s2c)

    def compression(self) -> tuple[str, ...]:
        return _union(self.compression_c2s, self.compression_s2c)


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(x for x in b if x not in a)


@dataclass(frozen=True)
class HostKey:
    """One host key the server presented when asked for one key family."""

    algorithm: str  # the host key algorithm negotiated, e.g. rsa-sha2-512
    key_type: str  # the key's own type, e.g. ssh-rsa, ecdsa-sha2-nistp256
    bits: int
    fingerprint: str  # OpenSSH form: "SHA256:" + unpadded base64 of SHA-256(key blob)
    # True only when the server signed the exchange hash with this key and the
    # signature verified (RFC 4253 8); a key seen without that proof must not be pinned.
    verified: bool
    certificate: bool = False


@dataclass(frozen=True)
class SshObservation:
    identification: str = ""  # the SSH-... line without CR LF
    protocol_version: str = ""  # "2.0", "1.99" (SSH-1 and 2), "1.5" (SSH-1 only)
    software: str = ""  # softwareversion field, e.g. OpenSSH_9.2p1
    product: str | None = None  # OpenSSH, OpenSSH_for_Windows, dropbear, libssh, ...
    product_version: str | None = None  # 9.2p1
    comments: str | None = None  # text after the first space, e.g. Debian-2+deb12u3
    pre_banner: tuple[str, ...] = ()  # lines before the identification (RFC 4253 4.2)
    kexinit: KexInit | None = None
    host_keys: tuple[HostKey, ...] = ()
    auth_methods: tuple[str, ...] = ()  # answer to the 'none' method (RFC 4252 5.2)
    auth_user: str = ""  # the neutral user name asked for
    not_determined: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # why each not_determined item failed, for humans

    @property
    def strict_kex(self) -> bool | None:
        return None if self.kexinit is None else self.kexinit.strict_kex

    @property
    def ssh1(self) -> bool:
        return self.protocol_version.startswith("1.")
