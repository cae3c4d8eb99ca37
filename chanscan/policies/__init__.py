"""Policies: named, versioned rule sets checked against an endpoint's observation.

A policy is a TOML file (built-ins in ``policies/data/``, or the user's own)::

    name = "mozilla-intermediate"
    version = "5.8"
    title = "..."
    references = ["https://ssl-config.mozilla.org/guidelines/5.8.json"]

    [[rule]]
    id = "tls_versions"                  # finding id becomes policy.<name>.<id>
    check = "tls.versions.allowed"       # one of CHECKS
    values = ["TLS 1.2", "TLS 1.3"]      # or: number = 2048
    severity = "medium"                  # info/low/medium/high/critical
    axis = "eavesdropping"               # mitm/eavesdropping/both
    title = "Protocol versions outside the policy"
    references = ["..."]
    platforms = ["esxi", "vcenter"]      # optional: only there (or where unknown)

A check whose input was not observed (None, not determined) raises nothing: a policy
never claims a violation it did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chanscan.errors import ConfigError
from chanscan.model import Axis, EndpointResult, Finding, Severity
from chanscan.policies import checks
from chanscan.remediation import platform_of, topic_text
from chanscan.userfiles import parse_toml, read_text

BUILTIN = ("default", "mozilla-modern", "mozilla-intermediate", "vsphere8-stig")

_TOP_KEYS = frozenset({"name", "version", "title", "description", "references", "rule"})
_RULE_KEYS = frozenset(
    {"id", "check", "values", "number", "severity", "axis", "title", "references", "platforms"}
)


@dataclass(frozen=True)
class PolicyRule:
    id: str
    check: str
    title: str
    severity: Severity
    axis: Axis
    values: tuple[str, ...] = ()
    number: int | None = None
    references: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    title: str
    rules: tuple[PolicyRule, ...] = ()
    description: str = ""
    references: tuple[str, ...] = ()
    source: str = ""


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    raw = parse_toml(text, source)
    extra = set(raw) - _TOP_KEYS
    if extra:
        raise ConfigError(f"{source}: unknown key {sorted(extra)[0]!r}")
    name = _string(raw, "name", source)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{source}: key 'name' must be letters, digits, '-' or '_': {name!r}")
    rules_raw = raw.get("rule", [])
    if not isinstance(rules_raw, list):
        raise ConfigError(f"{source}: 'rule' must be an array of tables ([[rule]])")
    rules = tuple(_rule(r, f"{source} rule[{i}]") for i, r in enumerate(rules_raw, 1))
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise ConfigError(f"{source}: duplicate rule id {r.id!r}")
        seen.add(r.id)
    return Policy(
        name=name,
        version=str(raw.get("version", "")),
        title=str(raw.get("title", name)),
        rules=rules,
        description=str(raw.get("description", "")),
        references=_strings(raw, "references", source),
        source=source,
    )


def _string(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: key {key!r} must be a non-empty string")
    return value.strip()


def _strings(table: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: key {key!r} must be a list of strings")
    return tuple(str(v) for v in value)


def _rule(entry: object, where: str) -> PolicyRule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    extra = set(entry) - _RULE_KEYS
    if extra:
        raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r}")
    rule_id = _string(entry, "id", where)
    check = _string(entry, "check", where)
    spec = checks.CHECKS.get(check)
    if spec is None:
        raise ConfigError(f"{where}: key 'check': unknown check {check!r}")
    values = _strings(entry, "values", where)
    number = entry.get("number")
    if spec.takes == "values" and not values:
        raise ConfigError(f"{where}: check {check!r} needs 'values'")
    if spec.takes == "number" and (not isinstance(number, int) or isinstance(number, bool)):
        raise ConfigError(f"{where}: check {check!r} needs an integer 'number'")
    try:
        severity = Severity(str(entry.get("severity", "medium")))
        axis = Axis(str(entry.get("axis", "both")))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return PolicyRule(
        id=rule_id,
        check=check,
        title=str(entry.get("title", check)),
        severity=severity,
        axis=axis,
        values=values,
        number=number if isinstance(number, int) else None,
        references=_strings(entry, "references", where),
        platforms=_strings(entry, "platforms", where),
    )


def load_policy(name_or_path: str | Path, policy_file: Path | None = None) -> Policy:
    """A built-in policy by name, or a custom one from a TOML file.

    With ``policy_file`` (``--policy-file``), the name that file declares, or the file's
    own path, selects it; built-in names still select the built-ins, so targets-file
    groups can mix both."""
    if policy_file is not None:
        custom = _load_file(Path(policy_file))
        if str(name_or_path) in (custom.name, str(policy_file)):
            return custom
    if str(name_or_path) in BUILTIN:
        name = str(name_or_path)
        text = resources.files("chanscan.policies").joinpath(f"data/{name}.toml").read_text("utf-8")
        return parse_policy(text, f"<built-in policy {name}>")
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(BUILTIN)
        if policy_file is not None:
            known += f", or {custom.name!r} from {policy_file}"
        raise ConfigError(f"{path}: no such policy file or name (policies: {known})")
    return _load_file(path)


def _load_file(path: Path) -> Policy:
    return parse_policy(read_text(path, "policy file"), str(path))


def evaluate_policy(
    policy: Policy, result: EndpointResult, findings: Sequence[Finding] | None = None
) -> list[Finding]:
    """Policy violations on one endpoint as findings ``policy.<name>.<rule>``.

    ``findings`` are the rule findings for the ``findings.forbidden`` check; without
    them the result's own findings are used."""
    platform = platform_of(result)
    present = tuple(f.id for f in (result.findings if findings is None else findings))
    out: list[Finding] = []
    for rule in policy.rules:
        if rule.platforms and platform != "generic" and platform not in rule.platforms:
            continue
        spec = checks.CHECKS[rule.check]
        evidence = spec.run(result, rule.values, rule.number, present)
        if not evidence:
            continue
        out.append(
            Finding(
                id=f"policy.{policy.name}.{rule.id}",
                title=f"{policy.title}: {rule.title}",
                severity=rule.severity,
                axis=rule.axis,
                evidence=tuple(evidence),
                remediation=topic_text(spec.topic, platform) if spec.topic else "",
                references=rule.references or policy.references,
                policy=policy.name,
            )
        )
    return out
