"""What discovery records for a port that answers in cleartext HTTP (80, WinRM 5985)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpObservation:
    status: int  # status code of the answer to ``GET /``
    reason: str = ""
    location: str | None = None
    server: str | None = None
    redirects_to_https: bool = False
