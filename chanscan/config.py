"""Targets: positional target strings and the ``--targets`` TOML inventory.

Everything here is synchronous and does no network I/O; host names are kept
unresolved (``TargetHost.name``) and resolved once, asynchronously, by the scheduler.
Every error is a :class:`ConfigError` whose message names the file, line or value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chanscan.errors import ConfigError, ScopeError
from chanscan.model import PlatformHint
from chanscan.userfiles import parse_toml, read_text

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_HOSTS = 65_536

# Management ports per platform (vendor port references in targets.example.toml).
# 80 and 5985 are the plaintext siblings: scanned so that a cleartext management
# channel beside a TLS one is reported.
PLATFORM_PORTS: dict[PlatformHint, tuple[int, ...]] = {
    PlatformHint.AUTO: (22, 443, 902, 5480, 5989, 8443, 9443, 5986, 3389, 2179, 80, 5985),
    PlatformHint.ESXI: (22, 80, 443, 902, 5989, 8443),
    PlatformHint.VCENTER: (22, 80, 443, 5480, 9443),
    PlatformHint.XENSERVER: (22, 80, 443),
    PlatformHint.HYPERV: (22, 80, 443, 3389, 2179, 5985, 5986),
}

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$"
)


@dataclass(frozen=True)
class TargetHost:
    """One target address (``address``) or a name to resolve (``name``)."""

    name: str | None = None
    address: str | None = None
    port: int | None = None  # from ``host:port``; overrides the port set


@dataclass(frozen=True)
class TargetGroup:
    name: str
    hosts: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    ports: tuple[int, ...] | None = None
    platform: PlatformHint = PlatformHint.AUTO
    policy: str = "default"
    policy_at: str = ""  # "file:line" of the group's policy, for messages
    # Where the group's endpoints must be measured from in a ``--dask`` scan: only on
    # workers started with ``--resources site-NAME=1``. Ignored by a local scan.
    site: str | None = None

    @property
    def effective_ports(self) -> tuple[int, ...]:
        return self.ports if self.ports is not None else PLATFORM_PORTS[self.platform]


@dataclass(frozen=True)
class Inventory:
    groups: tuple[TargetGroup, ...]
    exclude: tuple[str, ...] = ()
    source: str = "<command line>"


@dataclass(frozen=True)
class PlannedTarget:
    """A host (address or unresolved name) with the ports to scan and its group."""

    host: TargetHost
    ports: tuple[int, ...]
    group: str | None
    platform: PlatformHint
    policy: str
    site: str | None = None
    # Excluded networks that apply to this target (top level and its group), as CIDR
    # text: a name is checked against them again once it resolves, so an exclude wins
    # over a name that resolves into it ("--exclude always wins").
    exclude: tuple[str, ...] = ()

    def excludes(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(n) for n in self.exclude)


@dataclass
class _Spec:
    text: str
    port: int | None = None
    network: IPNetwork | None = None
    first: IPAddress | None = None
    last: IPAddress | None = None
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self) -> int:
        if self.network is not None:
            return int(self.network.num_addresses)
        if self.first is not None and self.last is not None:
            return int(self.last) - int(self.first) + 1
        return 1


# -- parsing single values ----------------------------------------------------------------
def parse_port(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: port {value!r} is not a number")
    text = str(value).strip()
    if not text.isdigit():
        raise ConfigError(f"{where}: port {value!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port {port} is out of range 1-65535")
    return port


def parse_ports(value: str | Sequence[object], where: str) -> tuple[int, ...]:
    """``"22,443,900-902"`` or ``[22, 443, "900-902"]`` -> sorted unique ports."""
    items: Iterable[object] = value.split(",") if isinstance(value, str) else value
    ports: set[int] = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, str) and "-" in text:
            lo_s, _, hi_s = text.partition("-")
            lo, hi = parse_port(lo_s, where), parse_port(hi_s, where)
            if lo > hi:
                raise ConfigError(f"{where}: port range {text!r} runs backwards")
            ports.update(range(lo, hi + 1))
        else:
            ports.add(parse_port(item if not isinstance(item, str) else text, where))
    if not ports:
        raise ConfigError(f"{where}: empty port list")
    return tuple(sorted(ports))


def parse_platform(value: object, where: str) -> PlatformHint:
    try:
        return PlatformHint(str(value))
    except ValueError:
        allowed = ", ".join(p.value for p in PlatformHint)
        raise ConfigError(f"{where}: unknown platform {value!r} (one of {allowed})") from None


def _split_port(text: str, where: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ConfigError(f"{where}: unbalanced brackets in {text!r}")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ConfigError(f"{where}: expected ':port' after ']' in {text!r}")
        return host, parse_port(rest[1:], where)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, parse_port(port, where)
    return text, None


def parse_target(text: str, where: str = "target") -> _Spec:
    """One target string: address, CIDR, range, hostname, host:port or [v6]:port."""
    raw = text.strip()
    if not raw:
        raise ConfigError(f"{where}: empty target")
    host, port = _split_port(raw, f"{where} {raw!r}")
    if "/" in host:
        try:
            return _Spec(raw, port, network=ipaddress.ip_network(host, strict=False))
        except ValueError:
            raise ConfigError(f"{where}: bad CIDR {host!r}") from None
    if "-" in host and (host[0].isdigit() or ":" in host) and not _is_name(host):
        lo_s, _, hi_s = host.partition("-")
        try:
            lo = ipaddress.ip_address(lo_s)
            if hi_s.isdigit() and lo.version == 4:  # 192.0.2.5-20 shorthand
                hi: IPAddress = ipaddress.ip_address(lo_s.rsplit(".", 1)[0] + "." + hi_s)
            else:
                hi = ipaddress.ip_address(hi_s)
        except ValueError:
            raise ConfigError(f"{where}: bad address range {host!r}") from None
        if lo.version != hi.version or int(hi) < int(lo):
            raise ConfigError(f"{where}: bad address range {host!r}")
        return _Spec(raw, port, first=lo, last=hi)
    try:
        addr = ipaddress.ip_address(host)
        return _Spec(raw, port, first=addr, last=addr)
    except ValueError:
        pass
    if all(c.isdigit() or c == "." for c in host) or not _HOSTNAME.match(host):
        raise ConfigError(f"{where}: {host!r} is not an address, network, range or host name")
    return _Spec(raw, port, name=host.rstrip(".").lower())


def _is_name(host: str) -> bool:
    """A host name that merely starts with a digit (``3par-01.example``) is a name, not
    a range: a range's ends are addresses, and a name has a label that is not a number
    (RFC 1123 2.1 allows a leading digit)."""
    if not _HOSTNAME.match(host) or ":" in host:
        return False
    lo = host.partition("-")[0]
    try:
        ipaddress.ip_address(lo)
        return False
    except ValueError:
        return not all(c.isdigit() or c == "." for c in host.replace("-", ""))


def _addresses(spec: _Spec) -> Iterator[IPAddress]:
    if spec.network is not None:
        yield from spec.network  # every address, as nmap does: a /24 is 256 targets
    elif spec.first is not None and spec.last is not None:
        cls = type(spec.first)
        for i in range(int(spec.first), int(spec.last) + 1):
            yield cls(i)


# -- the TOML inventory ---------------------------------------------------------------
_GROUP_KEYS = {"hosts", "exclude", "ports", "platform", "policy", "site"}
# A site becomes a Dask resource name, ``site-NAME``, given on a worker's command line
# as ``--resources site-NAME=1``: keep it to characters that survive that syntax.
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TOP_KEYS = {"groups", "exclude"}


def _line_of(text: str, key: str) -> int | None:
    m = re.search(rf"^\s*\[?[\w.\"-]*\b{re.escape(key)}\b", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _line_of_value(text: str, value: str) -> int | None:
    for quoted in (f'"{value}"', f"'{value}'"):
        i = text.find(quoted)
        if i >= 0:
            return text.count("\n", 0, i) + 1
    return None


def _where(path: str, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{path}:{line}" if line else path


def _line_in_group(text: str, group: str, key: str) -> int | None:
    """The line of ``key = ...`` inside the ``[groups.NAME]`` table (or a dotted
    ``groups.NAME.key`` line); None when the text does not show it plainly."""
    header = re.compile(rf"^\s*\[\s*groups\.\"?{re.escape(group)}\"?\s*\]", re.MULTILINE)
    m = header.search(text)
    if m is not None:
        after = text[m.end() :]
        stop = re.search(r"^\s*\[", after, re.MULTILINE)
        body = after[: stop.start()] if stop else after
        k = re.search(rf"^\s*{re.escape(key)}\s*=", body, re.MULTILINE)
        if k is not None:
            return text.count("\n", 0, m.end() + k.start()) + 1
    return _line_of(text, f"groups.{group}.{key}")


def _where_value(path: str, text: str, value: str) -> str:
    line = _line_of_value(text, value)
    return f"{path}:{line}" if line else path


def load_inventory(path: Path) -> Inventory:
    text = read_text(path, "targets file")
    return inventory_from_dict(parse_toml(text, str(path)), str(path), text)


def _str_list(value: object, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return tuple(value)


def inventory_from_dict(data: dict[str, Any], source: str, text: str = "") -> Inventory:
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{_where(source, text, key)}: unknown key {key!r} (expected 'groups' or 'exclude')"
            )
    groups_raw = data.get("groups", {})
    if not isinstance(groups_raw, dict) or not groups_raw:
        raise ConfigError(f"{source}: no [groups.NAME] tables with hosts")
    groups = []
    for name, g in groups_raw.items():
        where = _where(source, text, f"groups.{name}")
        if not isinstance(g, dict):
            raise ConfigError(f"{where}: [groups.{name}] must be a table")
        for key in g:
            if key not in _GROUP_KEYS:
                raise ConfigError(
                    f"{_where(source, text, key)}: unknown key {key!r} in group {name!r} "
                    f"(expected one of {', '.join(sorted(_GROUP_KEYS))})"
                )
        if "hosts" not in g:
            raise ConfigError(f"{where}: group {name!r} has no 'hosts'")
        hosts = _str_list(g["hosts"], where, "hosts")
        for h in hosts:
            parse_target(h, f"{_where_value(source, text, h)}: group {name!r}")
        exclude = _str_list(g.get("exclude", []), where, "exclude")
        for h in exclude:
            parse_target(h, f"{_where_value(source, text, h)}: group {name!r} exclude")
        ports = None
        if "ports" in g:
            p = g["ports"]
            if not isinstance(p, list | str):
                raise ConfigError(f"{where}: 'ports' must be a list or a string like '22,443'")
            ports = parse_ports(p, f"{_where(source, text, 'ports')}: group {name!r}")
        platform = parse_platform(g.get("platform", "auto"), f"{where}: group {name!r}")
        policy = g.get("policy", "default")
        line = _line_in_group(text, name, "policy") if "policy" in g else None
        policy_at = f"{source}:{line}" if line else where
        if not isinstance(policy, str) or not policy:
            raise ConfigError(f"{policy_at}: group {name!r}: 'policy' must be a policy name")
        site = g.get("site")
        if site is not None and (not isinstance(site, str) or not _SITE.match(site)):
            raise ConfigError(
                f"{_where(source, text, 'site')}: group {name!r}: 'site' must be a name of "
                f"letters, digits, '.', '_' or '-' (got {site!r})"
            )
        groups.append(TargetGroup(name, hosts, exclude, ports, platform, policy, policy_at, site))
    top_ex = _str_list(data.get("exclude", []), source, "exclude")
    for h in top_ex:
        parse_target(h, f"{_where_value(source, text, h)}: exclude")
    return Inventory(tuple(groups), top_ex, source)


def inventory_from_args(
    targets: Sequence[str],
    ports: tuple[int, ...] | None,
    platform: PlatformHint,
    policy: str,
    exclude: Sequence[str] = (),
) -> Inventory:
    for t in targets:
        parse_target(t)
    for t in exclude:
        parse_target(t, "exclude")
    group = TargetGroup("cli", tuple(targets), (), ports, platform, policy)
    return Inventory((group,), tuple(exclude))


# -- expansion -------------------------------------------------------------------------
def plan(inventory: Inventory, max_hosts: int = DEFAULT_MAX_HOSTS) -> list[PlannedTarget]:
    """Expand every group to hosts, applying excludes (which always win) and the scope
    guard. Names stay unresolved; a name excluded by name is dropped here, and the
    excluded networks travel with each name so the scheduler applies them to the
    addresses it resolves to. An empty scope is a usage error, never an empty pass."""
    planned: list[PlannedTarget] = []
    count = 0
    # Which group each host came from: a host in two groups would get two policies and
    # two platform hints, so it is an error naming both rather than a silent pick.
    owner: dict[str, str] = {}

    def claim(host: str, group: str) -> None:
        first = owner.setdefault(host, group)
        if first != group:
            raise ConfigError(
                f"{inventory.source}: host {host} is in group {first!r} and in group "
                f"{group!r}; list it in one group (that group sets its ports, platform "
                "and policy)"
            )

    for group in inventory.groups:
        ex_specs = [parse_target(e, "exclude") for e in (*inventory.exclude, *group.exclude)]
        ex_names = {s.name for s in ex_specs if s.name}
        ex_nets: list[IPNetwork] = []
        for s in ex_specs:
            if s.network is not None:
                ex_nets.append(s.network)
            elif s.first is not None and s.last is not None:
                ex_nets.extend(ipaddress.summarize_address_range(s.first, s.last))
        ex_text = tuple(str(n) for n in ex_nets)
        for text in group.hosts:
            spec = parse_target(text, f"group {group.name!r}")
            ports = (spec.port,) if spec.port else group.effective_ports
            if spec.name is not None:
                if spec.name in ex_names:
                    continue
                claim(spec.name.lower(), group.name)
                count += 1
                _guard(count, max_hosts, inventory.source)
                planned.append(
                    PlannedTarget(
                        TargetHost(name=spec.name, port=spec.port),
                        ports,
                        group.name,
                        group.platform,
                        group.policy,
                        group.site,
                        ex_text,
                    )
                )
                continue
            if spec.network is not None and any(
                spec.network.version == n.version and spec.network.subnet_of(n)  # type: ignore[arg-type]
                for n in ex_nets
            ):
                continue
            for addr in _addresses(spec):
                if any(addr in n for n in ex_nets):
                    continue
                claim(str(addr), group.name)
                count += 1
                _guard(count, max_hosts, inventory.source)
                planned.append(
                    PlannedTarget(
                        TargetHost(address=str(addr), port=spec.port),
                        ports,
                        group.name,
                        group.platform,
                        group.policy,
                        group.site,
                        ex_text,
                    )
                )
    if not planned:
        raise ScopeError(
            f"{inventory.source}: nothing to scan: every target is excluded or no group "
            "lists a host"
        )
    return planned


def _guard(count: int, max_hosts: int, source: str) -> None:
    if count > max_hosts:
        raise ScopeError(
            f"{source}: targets expand to more than {max_hosts} addresses; "
            f"narrow them or raise --max-hosts"
        )
