"""The guard of the one sslyze adapter: fails on an sslyze or nassl upgrade (review
``chanscan/probes/sslyze_adapter.py`` against the new version, then move the pins) and
when any other chanscan module reaches for a private sslyze or nassl name."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from chanscan.probes import sslyze_adapter as adapter

PACKAGE = Path(adapter.__file__).resolve().parents[1]
# A private name of sslyze or nassl: an import from a _module or of a _name, or an
# attribute starting with one underscore on something imported from them.
_PRIVATE_IMPORT = re.compile(
    r"^\s*(from\s+(sslyze|nassl)[\w.]*\._\w+|from\s+(sslyze|nassl)[\w.]*\s+import\s+.*\b_[a-z]\w*"
    r"|import\s+(sslyze|nassl)[\w.]*\._)",
    re.MULTILINE,
)
_PRIVATE_ATTRIBUTE = re.compile(r"\b(tls_connection|SslConnection|_robot_tester)\._[a-z]\w*")


def test_pinned_versions_are_the_installed_ones() -> None:
    assert version("sslyze") == adapter.SSLYZE_VERSION
    assert version("nassl") == adapter.NASSL_VERSION
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert f'"sslyze=={adapter.SSLYZE_VERSION}"' in pyproject
    assert f'"nassl=={adapter.NASSL_VERSION}"' in pyproject


@pytest.mark.parametrize(
    ("fn", "params"),
    [
        (adapter.get_rsa_parameters, ["server_info", "tls_version", "openssl_cipher_string"]),
        (
            adapter.run_oracle_detection,
            [
                "server_info",
                "tls_version_to_use",
                "cipher_string",
                "rsa_modulus",
                "rsa_exponent",
                "should_complete_handshake",
            ],
        ),
        (
            adapter.connect_with_cipher_suite,
            ["server_connectivity_info", "tls_version", "cipher_suite"],
        ),
        (adapter.SECURE_RENEGOTIATION_JOB, ["server_info"]),
        (adapter.CLIENT_RENEGOTIATION_JOB, ["server_info", "client_renegotiation_attempts"]),
        (adapter.open_socket(), ["server_location", "network_timeout"]),
        (adapter.pre_handshake(), ["self"]),
    ],
)
def test_private_functions_keep_their_signatures(fn: object, params: list[str]) -> None:
    assert callable(fn)
    assert list(inspect.signature(fn).parameters)[: len(params)] == params


def test_private_values_and_classes() -> None:
    assert adapter.ROBOT_ATTEMPTS == 3
    assert issubclass(adapter.ServerDoesNotSupportRsa, Exception)
    assert issubclass(adapter.OpenSSLError, Exception)
    result = adapter.job_result(42, None)
    assert result.get_result() == 42
    failed = adapter.job_result(None, ValueError("x"))
    with pytest.raises(ValueError):
        failed.get_result()


def test_no_other_module_uses_a_private_sslyze_or_nassl_name() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "sslyze_adapter.py":
            continue
        text = path.read_text(encoding="utf-8")
        for m in (*_PRIVATE_IMPORT.finditer(text), *_PRIVATE_ATTRIBUTE.finditer(text)):
            line = text.count("\n", 0, m.start()) + 1
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {m.group(0).strip()}")
    assert not offenders, "use chanscan.probes.sslyze_adapter:\n" + "\n".join(offenders)
