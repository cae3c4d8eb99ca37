"""Shared test plumbing.

In CI (``CI`` set), a test that needs a real server (or browser) and was skipped is
turned into a failure: a missing ``sshd``, ``openssl`` or ``chromium`` must never pass
as green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chanscan.lab import Lab

_SERVER_MARKERS = ("needs_sshd", "needs_openssl", "needs_chromium", "needs_xrdp")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        os.environ.get("CI")
        and report.skipped
        and any(item.get_closest_marker(m) for m in _SERVER_MARKERS)
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, but CI must provide the server: {report.longrepr}"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running
