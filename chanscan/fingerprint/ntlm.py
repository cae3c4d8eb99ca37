"""NTLM NEGOTIATE/CHALLENGE messages: build the negotiate, read the challenge.

An NTLM CHALLENGE is sent before any credential is checked, and it carries the
server's OS version and its NetBIOS/DNS names (nmap's ``http-ntlm-info`` and
``rdp-ntlm-info`` read the same fields). Layouts follow [MS-NLMP]:
2.2.1.1 NEGOTIATE_MESSAGE, 2.2.1.2 CHALLENGE_MESSAGE, 2.2.2.1 AV_PAIR,
2.2.2.10 VERSION (https://learn.microsoft.com/openspecs/windows_protocols/ms-nlmp/).
The negotiate carries no user, domain or password: only flags.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from chanscan.errors import ProtocolError
from chanscan.model import PlatformInfo

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE = 1
CHALLENGE = 2

# [MS-NLMP] 2.2.2.5 NEGOTIATE flags.
FLAG_UNICODE = 0x00000001
FLAG_OEM = 0x00000002
FLAG_REQUEST_TARGET = 0x00000004
FLAG_NTLM = 0x00000200
FLAG_ALWAYS_SIGN = 0x00008000
FLAG_TARGET_TYPE_DOMAIN = 0x00010000
FLAG_EXTENDED_SESSIONSECURITY = 0x00080000
FLAG_TARGET_INFO = 0x00800000
FLAG_VERSION = 0x02000000
FLAG_128 = 0x20000000
FLAG_56 = 0x80000000

_NEGOTIATE_FLAGS = (
    FLAG_UNICODE
    | FLAG_OEM
    | FLAG_REQUEST_TARGET
    | FLAG_NTLM
    | FLAG_ALWAYS_SIGN
    | FLAG_EXTENDED_SESSIONSECURITY
    | FLAG_VERSION
    | FLAG_128
    | FLAG_56
)

# [MS-NLMP] 2.2.2.1 AvId values.
AV_EOL = 0
AV_NB_COMPUTER = 1
AV_NB_DOMAIN = 2
AV_DNS_COMPUTER = 3
AV_DNS_DOMAIN = 4
AV_DNS_TREE = 5
AV_TIMESTAMP = 7

# Windows Server releases by NT version and build, from Microsoft's "Windows Server
# release information" (https://learn.microsoft.com/windows/release-health/windows-server-release-info)
# and the lifecycle pages it links. Client Windows shares some builds (10.0.14393 is
# also Windows 10 1607): the caller says "Windows Server" only with that caveat.
WINDOWS_SERVER_BUILDS: dict[tuple[int, int, int], str] = {
    (6, 1, 7601): "Windows Server 2008 R2",
    (6, 2, 9200): "Windows Server 2012",
    (6, 3, 9600): "Windows Server 2012 R2",
    (10, 0, 14393): "Windows Server 2016",
    (10, 0, 17763): "Windows Server 2019",
    (10, 0, 20348): "Windows Server 2022",
    (10, 0, 26100): "Windows Server 2025",
}


@dataclass(frozen=True)
class NtlmChallenge:
    flags: int
    target_name: str | None = None
    netbios_computer: str | None = None
    netbios_domain: str | None = None
    dns_computer: str | None = None
    dns_domain: str | None = None
    dns_tree: str | None = None
    os_major: int | None = None
    os_minor: int | None = None
    os_build: int | None = None
    ntlm_revision: int | None = None

    @property
    def os_version(self) -> str | None:
        if self.os_major is None or self.os_minor is None or self.os_build is None:
            return None
        return f"{self.os_major}.{self.os_minor}.{self.os_build}"

    @property
    def windows_release(self) -> str | None:
        if self.os_major is None or self.os_minor is None or self.os_build is None:
            return None
        return WINDOWS_SERVER_BUILDS.get((self.os_major, self.os_minor, self.os_build))


def build_negotiate() -> bytes:
    """A NEGOTIATE_MESSAGE with empty domain and workstation fields and a zero VERSION."""
    empty_field = struct.pack("<HHI", 0, 0, 0)
    return (
        SIGNATURE
        + struct.pack("<II", NEGOTIATE, _NEGOTIATE_FLAGS)
        + empty_field  # DomainNameFields
        + empty_field  # WorkstationFields
        + bytes(8)  # VERSION: debugging only per 2.2.2.10; zero says nothing about us
    )


def _u16(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<H", data, off)[0])


def _u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def _field(data: bytes, off: int) -> bytes:
    length, _max, offset = struct.unpack_from("<HHI", data, off)
    if offset + length > len(data):
        raise ProtocolError("NTLM field points past the end of the message")
    return data[offset : offset + length]


def _text(raw: bytes, unicode: bool) -> str:
    return raw.decode("utf-16-le" if unicode else "latin-1", errors="replace")


def parse_challenge(data: bytes) -> NtlmChallenge:
    """Read a CHALLENGE_MESSAGE; raise ProtocolError when it is not one."""
    if len(data) < 32 or data[:8] != SIGNATURE or _u32(data, 8) != CHALLENGE:
        raise ProtocolError("not an NTLM CHALLENGE message")
    flags = _u32(data, 20)
    unicode = bool(flags & FLAG_UNICODE)
    target = _text(_field(data, 12), unicode) or None
    names: dict[int, str] = {}
    if flags & FLAG_TARGET_INFO and len(data) >= 48:
        info = _field(data, 40)
        pos = 0
        # Bounded by the field length; each pair advances by at least 4 bytes.
        while pos + 4 <= len(info):
            av_id, av_len = struct.unpack_from("<HH", info, pos)
            pos += 4
            if av_id == AV_EOL:
                break
            value = info[pos : pos + av_len]
            pos += av_len
            if av_id in (AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN, AV_DNS_TREE):
                names[av_id] = value.decode("utf-16-le", errors="replace")
    major = minor = build = revision = None
    # The VERSION sits at offset 48 when NEGOTIATE_VERSION is set and the payload
    # starts after it (older servers omit it and start the payload at 48).
    if flags & FLAG_VERSION and len(data) >= 56:
        major, minor = data[48], data[49]
        build = _u16(data, 50)
        revision = data[55]
    return NtlmChallenge(
        flags=flags,
        target_name=target,
        netbios_computer=names.get(AV_NB_COMPUTER),
        netbios_domain=names.get(AV_NB_DOMAIN),
        dns_computer=names.get(AV_DNS_COMPUTER),
        dns_domain=names.get(AV_DNS_DOMAIN),
        dns_tree=names.get(AV_DNS_TREE),
        os_major=major,
        os_minor=minor,
        os_build=build,
        ntlm_revision=revision,
    )


def platform_from_challenge(ch: NtlmChallenge, source: str) -> PlatformInfo:
    """A Windows host, named by its NTLM challenge. NTLM proves Windows, not the Hyper-V
    role: 'medium' is the ceiling from this signal alone."""
    names = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("netbios", ch.netbios_computer),
            ("domain", ch.netbios_domain),
            ("dns", ch.dns_computer),
            ("dns_domain", ch.dns_domain),
        )
        if v
    )
    release = ch.windows_release
    evidence = f"{source}: NTLM challenge OS {ch.os_version or 'not sent'}"
    if release:
        evidence += f" ({release})"
    if names:
        evidence += f"; {names}"
    return PlatformInfo(
        product="Hyper-V",
        version=release or (f"{ch.os_major}.{ch.os_minor}" if ch.os_major is not None else None),
        build=ch.os_version,
        confidence="medium" if ch.os_version else "low",
        evidence=(evidence,),
    )
