"""The I/O-free SSH greeting parser: known answers, caps, and fuzzing."""

from __future__ import annotations

import pytest
from asyncssh.packet import Byte, NameList, String, UInt32
from hypothesis import given, settings
from hypothesis import strategies as st

from chanscan.obs.ssh import KexInit
from chanscan.probes.ssh_wire import (
    MAX_ID_LINE,
    MAX_NAMELIST_BYTES,
    MAX_PACKET,
    MAX_PRE_BANNER_BYTES,
    MAX_PRE_BANNER_LINES,
    MSG_DEBUG,
    MSG_DISCONNECT,
    NEED_MORE,
    Identification,
    SshHello,
    WireError,
    encode_kexinit,
    encode_packet,
    parse_hello,
    parse_identification,
    parse_software,
)

KEX = KexInit(
    kex=("curve25519-sha256", "ext-info-s", "kex-strict-s-v00@openssh.com"),
    host_key=("rsa-sha2-512", "ssh-ed25519"),
    ciphers_c2s=("chacha20-poly1305@openssh.com", "aes128-ctr"),
    ciphers_s2c=("aes128-ctr",),
    macs_c2s=("hmac-sha2-256-etm@openssh.com",),
    macs_s2c=("hmac-sha2-256-etm@openssh.com", "hmac-sha1"),
    compression_c2s=("none", "zlib@openssh.com"),
    compression_s2c=("none",),
)
ID = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
COOKIE = bytes(range(16))
GOOD = ID + encode_packet(encode_kexinit(KEX, COOKIE))


def test_round_trip_of_a_full_hello() -> None:
    hello = parse_hello(GOOD)
    assert isinstance(hello, SshHello)
    assert hello.kexinit == KEX
    assert hello.cookie == COOKIE
    assert hello.kexinit.strict_kex and hello.kexinit.ext_info
    ident = hello.identification
    assert ident.protocol_version == "2.0"
    assert ident.software == "OpenSSH_9.2p1"
    assert ident.comments == "Debian-2+deb12u3"
    assert (ident.product, ident.product_version) == ("OpenSSH", "9.2p1")
    assert hello.kexinit.ciphers() == ("chacha20-poly1305@openssh.com", "aes128-ctr")
    assert hello.kexinit.macs() == ("hmac-sha2-256-etm@openssh.com", "hmac-sha1")


def test_every_prefix_needs_more() -> None:
    for n in range(len(GOOD)):
        assert parse_hello(GOOD[:n]) == NEED_MORE, n


@pytest.mark.parametrize(
    ("software", "product", "version"),
    [
        ("OpenSSH_9.2p1", "OpenSSH", "9.2p1"),
        ("OpenSSH_for_Windows_8.1", "OpenSSH_for_Windows", "8.1"),
        ("dropbear_2022.83", "dropbear", "2022.83"),
        ("libssh_0.9.6", "libssh", "0.9.6"),
        ("libssh-0.6.0", "libssh", "0.6.0"),
        ("AsyncSSH_2.23.1", "AsyncSSH", "2.23.1"),
        ("ROSSSH", "ROSSSH", None),
    ],
)
def test_software_parsing(software: str, product: str, version: str | None) -> None:
    assert parse_software(software) == (product, version)


def test_pre_banner_lines_and_bare_lf() -> None:
    res = parse_identification(b"hello\r\nsecond line\nSSH-1.99-Cisco-1.25\n")
    assert isinstance(res, tuple)
    ident, used = res
    assert isinstance(ident, Identification)
    assert ident.pre_banner == ("hello", "second line")
    assert ident.protocol_version == "1.99"
    assert (ident.product, ident.product_version) == ("Cisco", "1.25")
    assert used == len(b"hello\r\nsecond line\nSSH-1.99-Cisco-1.25\n")


def test_ssh1_only_server_has_no_kexinit() -> None:
    hello = parse_hello(b"SSH-1.5-OpenSSH_2.9\n")
    assert isinstance(hello, SshHello) and hello.kexinit is None


def test_debug_packet_is_skipped_and_disconnect_reported() -> None:
    debug = encode_packet(Byte(MSG_DEBUG) + Byte(0) + String("hi") + String(""))
    assert isinstance(parse_hello(ID + debug + encode_packet(encode_kexinit(KEX))), SshHello)
    bye = encode_packet(Byte(MSG_DISCONNECT) + UInt32(2) + String("too many") + String(""))
    err = parse_hello(ID + bye)
    assert isinstance(err, WireError) and err.code == "disconnect" and "too many" in err.detail


def test_non_ascii_identification_is_kept_escaped() -> None:
    # RFC 4253 4.2 says US-ASCII, but OpenSSH logs in to a server with a UTF-8
    # VersionAddendum: parse it, keep the bytes as \\xNN (not U+FFFD).
    res = parse_hello(
        b"SSH-2.0-OpenSSH_9.2p1 Debian-\xc3\xa9\xff\r\n" + encode_packet(encode_kexinit(KEX))
    )
    assert isinstance(res, SshHello), res
    ident = res.identification
    assert ident.line == "SSH-2.0-OpenSSH_9.2p1 Debian-\\xc3\\xa9\\xff"
    assert ident.comments == "Debian-\\xc3\\xa9\\xff" and not ident.ascii
    assert ident.product == "OpenSSH" and res.kexinit == KEX


def test_pre_banner_up_to_the_cap_then_an_error_naming_it() -> None:
    lines = b"Notice: authorised use only\r\n"
    res = parse_hello(lines * MAX_PRE_BANNER_LINES + ID + encode_packet(encode_kexinit(KEX)))
    assert isinstance(res, SshHello) and len(res.identification.pre_banner) == 1024
    over = parse_hello(lines * (MAX_PRE_BANNER_LINES + 1) + ID)
    assert isinstance(over, WireError) and over.code == "pre_banner_too_long"
    assert "1024 lines" in over.detail and "64 KiB" in over.detail


def test_errors_after_the_identification_are_marked() -> None:
    res = parse_hello(ID + UInt32(0x7FFFFFFF) + b"\x04")
    assert isinstance(res, WireError) and res.after_id
    assert res.detail == "packet length 2147483647 exceeds 35000 (RFC 4253 6.1)"
    early = parse_hello(b"HTTP/1.1 400 Bad Request\r\n" * 2000)
    assert isinstance(early, WireError) and not early.after_id


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"SSH-2.0-" + b"x" * MAX_ID_LINE, "id_too_long"),
        (b"SSH-2.0-" + b"x" * MAX_ID_LINE + b"\r\n", "id_too_long"),
        (b"x" * 9000, "pre_banner_too_long"),
        (b"a\n" * (MAX_PRE_BANNER_LINES + 1), "pre_banner_too_long"),
        (b"ab\n" * (MAX_PRE_BANNER_BYTES // 3 + 1), "pre_banner_too_long"),
        (b"SSH-2.0\r\n", "id_malformed"),
        (b"SSH-2.0-a\x00b\r\n", "id_not_printable"),
        (ID + UInt32(MAX_PACKET) + b"\x04", "packet_too_long"),
        (ID + UInt32(4) + b"\x08", "packet_malformed"),
        (ID + encode_packet(Byte(21)), "unexpected_message"),
        (ID + encode_packet(Byte(20) + b"short"), "kexinit_truncated"),
    ],
)
def test_errors(data: bytes, code: str) -> None:
    res = parse_hello(data)
    assert isinstance(res, WireError), res
    assert res.code == code


def _kexinit_with_list(raw: bytes) -> bytes:
    return Byte(20) + COOKIE + String(raw) + NameList([]) * 9 + Byte(0) + UInt32(0)


def test_namelist_caps() -> None:
    big = b",".join([b"a"] * 300)
    res = parse_hello(ID + encode_packet(_kexinit_with_list(big)))
    assert isinstance(res, WireError) and res.code == "namelist_too_long"
    huge = b"a" * (MAX_NAMELIST_BYTES + 1)
    res = parse_hello(ID + encode_packet(_kexinit_with_list(huge)))
    assert isinstance(res, WireError) and res.code == "namelist_too_long"
    for bad in (b"a,,b", b"x" * 65, b"sp ace", b"caf\xe9"):
        res = parse_hello(ID + encode_packet(_kexinit_with_list(bad)))
        assert isinstance(res, WireError) and res.code == "bad_name", bad


def _check(res: object) -> None:
    assert res == NEED_MORE or isinstance(res, SshHello | WireError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_garbage(data: bytes) -> None:
    _check(parse_hello(data))
    _check(parse_hello(ID + data))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD)), st.binary(max_size=64), st.data())
def test_fuzz_mutations(cut: int, junk: bytes, data: st.DataObject) -> None:
    """Truncate, overwrite bytes and append junk; a length field that points past the
    buffer must never be followed (the result is NEED_MORE or an error)."""
    buf = bytearray(GOOD[:cut])
    if buf:
        for _ in range(data.draw(st.integers(0, 4))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] = data.draw(st.integers(0, 255))
    res = parse_hello(bytes(buf) + junk)
    _check(res)
    if isinstance(res, SshHello) and res.kexinit is not None:
        assert len(res.cookie) == 16


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.binary(max_size=32))
def test_fuzz_length_fields(length: int, tail: bytes) -> None:
    res = parse_hello(ID + UInt32(length) + tail)
    _check(res)
    if length > MAX_PACKET - 4:
        assert isinstance(res, WireError) and res.code == "packet_too_long"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=70
        ).filter(lambda s: "," not in s),
        max_size=20,
    )
)
def test_fuzz_names_roundtrip_or_rejected(names: list[str]) -> None:
    res = parse_hello(ID + encode_packet(encode_kexinit(KexInit(kex=tuple(names)))))
    if all(len(n) <= 64 for n in names):
        assert isinstance(res, SshHello) and res.kexinit is not None
        assert res.kexinit.kex == tuple(names)
    else:
        assert isinstance(res, WireError) and res.code == "bad_name"
