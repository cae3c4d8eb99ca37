"""Read OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").

Only what pinning needs: host names (plain or hashed), the key type and the SHA-256
fingerprint of the key blob in the form ``ssh-keygen -l`` prints. ``@cert-authority``
and ``@revoked`` lines and wildcard or negated patterns name no single host and are
skipped with a reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from pathlib import Path

from chanscan.errors import ConfigError

HASH_MAGIC = "|1|"  # HashKnownHosts: |1|base64(salt)|base64(HMAC-SHA1(salt, name))


@dataclass(frozen=True)
class KnownHost:
    name: str  # lowercased host name or address; "" for a hashed entry
    port: int  # 22 unless written as [name]:port; 0 when hashed (the port is inside the hash)
    salt: bytes  # hashed entries only
    digest: bytes
    key_type: str
    fingerprint: str  # "SHA256:" + unpadded base64

    def matches(self, name: str, port: int) -> bool:
        if self.salt:
            mac = hmac.new(self.salt, host_pattern(name, port).encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, self.digest)
        return self.name == name.lower() and self.port == port


@dataclass(frozen=True)
class ParsedKnownHosts:
    entries: tuple[KnownHost, ...]
    skipped: tuple[str, ...]  # "line N: reason"


def host_pattern(name: str, port: int) -> str:
    """How ssh writes a host into known_hosts: bare for port 22, else ``[name]:port``."""
    return name.lower() if port == 22 else f"[{name.lower()}]:{port}"


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _blob_type(blob: bytes) -> str:
    """The key type string that starts every SSH public key blob (RFC 4253 6.6)."""
    if len(blob) < 4:
        raise ValueError("key blob too short")
    (n,) = struct.unpack(">I", blob[:4])
    if n > len(blob) - 4 or n > 64:
        raise ValueError("key blob type length out of range")
    return blob[4 : 4 + n].decode("ascii")


def _parse_name(token: str) -> tuple[str, int, bytes, bytes]:
    if token.startswith(HASH_MAGIC):
        parts = token[len(HASH_MAGIC) :].split("|")
        if len(parts) != 2:
            raise ValueError("malformed hashed host name")
        salt = base64.b64decode(parts[0], validate=True)
        digest = base64.b64decode(parts[1], validate=True)
        if len(digest) != 20:
            raise ValueError("hashed host name is not HMAC-SHA1 sized")
        return "", 0, salt, digest
    if any(c in token for c in "*?!"):
        raise ValueError(f"pattern {token!r} names no single host")
    if token.startswith("["):
        host, sep, port = token[1:].partition("]:")
        if not sep or not port.isdigit():
            raise ValueError(f"malformed [host]:port {token!r}")
        return host.lower(), int(port), b"", b""
    return token.lower(), 22, b"", b""


def parse_known_hosts(text: str) -> ParsedKnownHosts:
    entries: list[KnownHost] = []
    skipped: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            skipped.append(f"line {lineno}: {fields[0]} entries are not host keys")
            continue
        if len(fields) < 3:
            skipped.append(f"line {lineno}: expected host names, key type and key")
            continue
        names, key_type, key_b64 = fields[0], fields[1], fields[2]
        try:
            blob = base64.b64decode(key_b64, validate=True)
            if _blob_type(blob) != key_type:
                raise ValueError(f"key blob is not a {key_type} key")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            skipped.append(f"line {lineno}: {exc}")
            continue
        fp = fingerprint(blob)
        for token in names.split(","):
            try:
                name, port, salt, digest = _parse_name(token)
            except (ValueError, binascii.Error) as exc:
                skipped.append(f"line {lineno}: {exc}")
                continue
            entries.append(KnownHost(name, port, salt, digest, key_type, fp))
    return ParsedKnownHosts(tuple(entries), tuple(skipped))


def read_known_hosts(path: str | Path) -> ParsedKnownHosts:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read known_hosts ({exc.strerror or exc})") from None
    return parse_known_hosts(text)
