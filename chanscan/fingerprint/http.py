"""A minimal HTTP/1.1 exchange over a trio stream: one request, one bounded answer.

Fingerprinting sends at most a handful of fixed requests, so a full client is not
needed; ``Connection: close`` lets a body without length end at EOF (RFC 9112 6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from chanscan.errors import ProtocolError

MAX_HEAD = 32 * 1024
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        name = name.lower()
        return tuple(v for k, v in self.headers if k == name)


def build_request(
    method: str,
    path: str,
    host: str,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: chanscan"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _receive_until(stream: trio.abc.Stream, buf: bytearray, need: int) -> bool:
    """Grow ``buf`` to ``need`` bytes; False at EOF."""
    while len(buf) < need:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return False
        buf += chunk
    return True


def parse_head(head: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP answer: {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", tuple(headers)


def _dechunk(data: bytes) -> bytes | None:
    """Decode a complete chunked body, or None if it is not complete yet."""
    out = bytearray()
    pos = 0
    while True:  # bounded: each chunk advances pos; a zero chunk ends
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if size == 0:
            return bytes(out)
        start = end + 2
        if start + size + 2 > len(data):
            return None
        out += data[start : start + size]
        pos = start + size + 2
        if len(out) > MAX_BODY:
            return bytes(out[:MAX_BODY])


async def exchange(stream: trio.abc.Stream, request: bytes) -> HttpResponse:
    await stream.send_all(request)
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise ProtocolError("HTTP header too large")
        chunk = await stream.receive_some(65536)
        if not chunk:
            if not buf:
                raise ProtocolError("connection closed without an HTTP answer")
            raise ProtocolError("connection closed inside the HTTP header")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status, reason, headers = parse_head(head)
    body = bytearray(rest)
    hdr = dict(headers)
    if "chunked" in hdr.get("transfer-encoding", "").lower():
        while (decoded := _dechunk(bytes(body))) is None and len(body) < MAX_BODY + 4096:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            body += chunk
        final = decoded if decoded is not None else bytes(body[:MAX_BODY])
    elif "content-length" in hdr and hdr["content-length"].isdigit():
        need = min(int(hdr["content-length"]), MAX_BODY)
        await _receive_until(stream, body, need)
        final = bytes(body[:need])
    else:
        while len(body) < MAX_BODY:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            body += chunk
        final = bytes(body[:MAX_BODY])
    return HttpResponse(status, reason, headers, final)
