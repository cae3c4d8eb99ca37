"""The SSH greeting on the wire, without I/O: bytes in, a frozen :class:`SshHello` out.

In the style of h11: :func:`parse_hello` looks at everything received so far and says
either "here is the hello", "need more bytes" (:data:`NEED_MORE`) or "this is not SSH"
(:class:`WireError`). It never raises on any input and never trusts a length field
beyond the buffer it was given. What it accepts is capped so that a hostile server
cannot make the scanner buffer without bound:

* lines before the identification (RFC 4253 4.2 allows them): at most
  :data:`MAX_PRE_BANNER_LINES` lines and :data:`MAX_PRE_BANNER_BYTES` bytes (the
  line cap is asyncssh's ``_MAX_BANNER_LINES``, so what we accept asyncssh accepts
  too), each line at most :data:`MAX_PRE_BANNER_LINE` bytes;
* the identification line: 255 characters including CR LF (RFC 4253 4.2);
* a binary packet: :data:`MAX_PACKET` bytes (RFC 4253 6.1: implementations must
  handle 35000 bytes total; a KEXINIT is far smaller);
* one name-list: :data:`MAX_NAMELIST_BYTES` bytes and :data:`MAX_NAMES` names.

The encoders at the end build the same messages for lab servers and tests.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

from asyncssh.packet import (
    Boolean,
    Byte,
    NameList,
    PacketDecodeError,
    SSHPacket,
    UInt32,
)

from chanscan.obs.ssh import KexInit

MAX_ID_LINE = 255  # RFC 4253 4.2, including CR LF
MAX_PRE_BANNER_LINES = 1024
MAX_PRE_BANNER_BYTES = 64 * 1024
MAX_PRE_BANNER_LINE = 8192
MAX_PACKET = 35000  # RFC 4253 6.1
MAX_NAMELIST_BYTES = 8192
MAX_NAMES = 256
MAX_SKIPPED_PACKETS = 8  # IGNORE/DEBUG messages tolerated before KEXINIT

MSG_DISCONNECT = 1  # RFC 4253 12
MSG_IGNORE = 2
MSG_UNIMPLEMENTED = 3
MSG_DEBUG = 4
MSG_KEXINIT = 20

_SOFTWARE_RE = re.compile(r"^(?P<product>.*?)[_-]v?(?P<version>\d[\w.+~-]*)$")
_NAME_RE = re.compile(r"^[\x21-\x2b\x2d-\x7e]{1,64}$")  # RFC 4251 6: printable, no comma


@dataclass(frozen=True)
class NeedMore:
    """The buffer ends before the hello does: read more and call again."""


NEED_MORE = NeedMore()


@dataclass(frozen=True)
class WireError:
    """The bytes are not an SSH-2 greeting; ``code`` is stable, ``detail`` is for humans.
    ``after_id``: the server had already sent a valid SSH identification, so the
    error is in its SSH binary protocol, not a sign of another protocol."""

    code: str
    detail: str
    after_id: bool = False


@dataclass(frozen=True)
class Identification:
    line: str
    protocol_version: str
    software: str
    comments: str | None
    product: str | None
    product_version: str | None
    pre_banner: tuple[str, ...] = ()
    ascii: bool = True  # False: bytes outside US-ASCII, kept as \xNN in ``line``


@dataclass(frozen=True)
class SshHello:
    identification: Identification
    kexinit: KexInit | None  # None for an SSH-1-only server (protocol 1.x, not 1.99)
    cookie: bytes = b""


IdResult = tuple[Identification, int] | NeedMore | WireError
PacketResult = tuple[bytes, int] | NeedMore | WireError
HelloResult = SshHello | NeedMore | WireError


def parse_software(software: str) -> tuple[str | None, str | None]:
    """``OpenSSH_9.2p1`` -> (OpenSSH, 9.2p1); ``OpenSSH_for_Windows_8.1`` ->
    (OpenSSH_for_Windows, 8.1); no version -> (software, None)."""
    if not software:
        return None, None
    m = _SOFTWARE_RE.match(software)
    if m is None or not m.group("product"):
        return software, None
    return m.group("product"), m.group("version")


def parse_identification(buf: bytes) -> IdResult:
    """The identification line and the lines before it; returns bytes consumed."""
    pos = 0
    pre: list[str] = []
    while True:  # bounded: each round consumes a line or returns
        nl = buf.find(b"\n", pos, pos + MAX_PRE_BANNER_LINE + 1)
        if nl < 0:
            rest = buf[pos:]
            if rest.startswith(b"SSH-") and len(rest) >= MAX_ID_LINE:
                return WireError("id_too_long", _id_too_long(rest))
            if len(rest) > MAX_PRE_BANNER_LINE:
                return WireError(
                    "pre_banner_too_long",
                    f"a line before the identification is longer than {MAX_PRE_BANNER_LINE} bytes",
                )
            if len(buf) > MAX_PRE_BANNER_BYTES:
                return WireError("pre_banner_too_long", _pre_banner_cap(len(pre), pos))
            return NEED_MORE
        raw = buf[pos:nl]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if raw.startswith(b"SSH-"):
            if nl + 1 - pos > MAX_ID_LINE:
                return WireError("id_too_long", _id_too_long(raw))
            ident = _decode_id(raw, tuple(pre))
            if isinstance(ident, WireError):
                return ident
            return ident, nl + 1
        pos = nl + 1
        pre.append(escape(raw))
        if len(pre) > MAX_PRE_BANNER_LINES or pos > MAX_PRE_BANNER_BYTES:
            return WireError("pre_banner_too_long", _pre_banner_cap(len(pre), pos))


def _pre_banner_cap(lines: int, size: int) -> str:
    return (
        f"no identification line within {MAX_PRE_BANNER_LINES} lines or "
        f"{MAX_PRE_BANNER_BYTES // 1024} KiB before it (RFC 4253 4.2; the server sent "
        f"{lines} lines, {size} bytes)"
    )


def _id_too_long(raw: bytes) -> str:
    return (
        f"identification line longer than {MAX_ID_LINE} bytes (RFC 4253 4.2): {escape(raw[:60])}..."
    )


def escape(raw: bytes) -> str:
    """Text as sent: printable ASCII kept, every other byte as ``\\xNN`` (never U+FFFD,
    so the report shows exactly which bytes the server sent)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def _decode_id(raw: bytes, pre: tuple[str, ...]) -> Identification | WireError:
    if any(b < 0x20 or b == 0x7F for b in raw):
        return WireError("id_not_printable", "control characters in identification line")
    # RFC 4253 4.2 asks for US-ASCII; real servers (a VersionAddendum with an accented
    # name) send other bytes and OpenSSH still logs in: keep them, escaped.
    line = escape(raw)
    head, _, comments = line.partition(" ")
    parts = head.split("-", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return WireError("id_malformed", f"not SSH-protoversion-softwareversion: {line[:80]!r}")
    product, version = parse_software(parts[2])
    return Identification(
        line=line,
        protocol_version=parts[1],
        software=parts[2],
        comments=comments or None,
        product=product,
        product_version=version,
        pre_banner=pre,
        ascii=raw.isascii(),
    )


def parse_packet(buf: bytes) -> PacketResult:
    """One unencrypted binary packet (RFC 4253 6): payload and bytes consumed."""
    if len(buf) < 4:
        return NEED_MORE
    length = int.from_bytes(buf[:4], "big")
    if length > MAX_PACKET - 4:
        return WireError(
            "packet_too_long",
            f"packet length {length} exceeds {MAX_PACKET} (RFC 4253 6.1)",
        )
    if len(buf) < 5:
        return NEED_MORE
    padding = buf[4]
    if length < padding + 2:
        return WireError("packet_malformed", f"padding {padding} does not fit length {length}")
    if len(buf) < 4 + length:
        return NEED_MORE
    return buf[5 : 4 + length - padding], 4 + length


def parse_kexinit(payload: bytes) -> tuple[KexInit, bytes] | WireError:
    """An SSH_MSG_KEXINIT payload (RFC 4253 7.1) and its cookie."""
    pkt = SSHPacket(payload)
    try:
        if pkt.get_byte() != MSG_KEXINIT:
            return WireError("not_kexinit", "first packet is not KEXINIT")
        cookie = pkt.get_bytes(16)
        lists: list[tuple[str, ...]] = []
        for _ in range(10):
            names = _namelist(pkt.get_string())
            if isinstance(names, WireError):
                return names
            lists.append(names)
        first_follows = pkt.get_boolean()
        pkt.get_uint32()  # reserved
    except PacketDecodeError as exc:
        return WireError("kexinit_truncated", str(exc) or "KEXINIT truncated")
    kex = KexInit(
        kex=lists[0],
        host_key=lists[1],
        ciphers_c2s=lists[2],
        ciphers_s2c=lists[3],
        macs_c2s=lists[4],
        macs_s2c=lists[5],
        compression_c2s=lists[6],
        compression_s2c=lists[7],
        languages_c2s=lists[8],
        languages_s2c=lists[9],
        first_kex_follows=first_follows,
    )
    return kex, cookie


def _namelist(raw: bytes) -> tuple[str, ...] | WireError:
    if len(raw) > MAX_NAMELIST_BYTES:
        return WireError("namelist_too_long", f"name-list of {len(raw)} bytes")
    if not raw:
        return ()
    parts = raw.split(b",")
    if len(parts) > MAX_NAMES:
        return WireError("namelist_too_long", f"name-list of {len(parts)} names")
    out: list[str] = []
    for p in parts:
        name = p.decode("latin-1")
        if not _NAME_RE.match(name):
            return WireError("bad_name", f"invalid algorithm name {name[:80]!r}")
        out.append(name)
    return tuple(out)


def parse_hello(buf: bytes) -> HelloResult:
    """The identification and the first KEXINIT; IGNORE/DEBUG/UNIMPLEMENTED before it
    are skipped (RFC 4253 11), a DISCONNECT becomes an error carrying its reason."""
    ident_res = parse_identification(buf)
    if not isinstance(ident_res, tuple):
        return ident_res
    ident, pos = ident_res
    if ident.protocol_version.startswith("1.") and ident.protocol_version != "1.99":
        return SshHello(ident, None)
    res = _first_kexinit(ident, buf, pos)
    if isinstance(res, WireError):
        return replace(res, after_id=True)
    return res


def _first_kexinit(ident: Identification, buf: bytes, pos: int) -> HelloResult:
    for _ in range(MAX_SKIPPED_PACKETS + 1):
        pkt_res = parse_packet(buf[pos:])
        if not isinstance(pkt_res, tuple):
            return pkt_res
        payload, used = pkt_res
        pos += used
        if not payload:
            return WireError("packet_empty", "packet without payload")
        msg = payload[0]
        if msg == MSG_KEXINIT:
            kex = parse_kexinit(payload)
            if isinstance(kex, WireError):
                return kex
            return SshHello(ident, kex[0], kex[1])
        if msg == MSG_DISCONNECT:
            return WireError("disconnect", _disconnect_text(payload))
        if msg not in (MSG_IGNORE, MSG_DEBUG, MSG_UNIMPLEMENTED):
            return WireError("unexpected_message", f"message {msg} before KEXINIT")
    return WireError("too_many_packets", "no KEXINIT among the first packets")


def _disconnect_text(payload: bytes) -> str:
    pkt = SSHPacket(payload[1:])
    try:
        code = pkt.get_uint32()
        text = pkt.get_string()[:200].decode("utf-8", errors="replace")
    except PacketDecodeError:
        return "server sent DISCONNECT"
    return f"server sent DISCONNECT {code}: {text}"


# -- encoders (lab servers and tests) -------------------------------------------------


def encode_kexinit(kex: KexInit, cookie: bytes | None = None) -> bytes:
    lists = (
        kex.kex,
        kex.host_key,
        kex.ciphers_c2s,
        kex.ciphers_s2c,
        kex.macs_c2s,
        kex.macs_s2c,
        kex.compression_c2s,
        kex.compression_s2c,
        kex.languages_c2s,
        kex.languages_s2c,
    )
    return b"".join(
        (
            Byte(MSG_KEXINIT),
            cookie if cookie is not None else os.urandom(16),
            *(NameList([n.encode("ascii") for n in names]) for names in lists),
            Boolean(kex.first_kex_follows),
            UInt32(0),
        )
    )


def encode_packet(payload: bytes, block: int = 8) -> bytes:
    """Frame ``payload`` with random padding to a multiple of ``block`` (RFC 4253 6)."""
    padding = block - (len(payload) + 5) % block
    if padding < 4:
        padding += block
    return UInt32(len(payload) + padding + 1) + Byte(padding) + payload + os.urandom(padding)


_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


def key_bits(blob: bytes) -> int:
    """Key size from an SSH public key blob (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4);
    0 when the type is unknown or the blob is malformed."""
    pkt = SSHPacket(blob)
    try:
        kind = pkt.get_string().decode("ascii", errors="replace")
        if kind.endswith("-cert-v01@openssh.com"):
            pkt.get_string()  # nonce (PROTOCOL.certkeys)
            kind = kind[: -len("-cert-v01@openssh.com")]
        if kind == "ssh-rsa":
            pkt.get_mpint()  # e
            return pkt.get_mpint().bit_length()
        if kind == "ssh-dss":
            return pkt.get_mpint().bit_length()  # p
        if kind.startswith("ecdsa-sha2-") or kind.startswith("sk-ecdsa-sha2-"):
            return _CURVE_BITS.get(pkt.get_string().decode("ascii", errors="replace"), 0)
    except PacketDecodeError:
        return 0
    return {"ssh-ed25519": 256, "sk-ssh-ed25519@openssh.com": 256, "ssh-ed448": 448}.get(kind, 0)
