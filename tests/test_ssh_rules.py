"""SSH findings, table-driven: each row is an observation and the finding ids (with
evidence) it must produce, and ids it must not."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from obs_builders import SCAN_TIME

from chanscan.model import Channel, EndpointResult, Status
from chanscan.obs.ssh import STRICT_KEX_SERVER, HostKey, KexInit, SshObservation
from chanscan.rules.ssh import AlgorithmDbError, evaluate, findings, load_db, parse_db

# A server with nothing to report: strict kex, PQ hybrid, AEAD/CTR + EtM, no passwords.
CLEAN_KEX = KexInit(
    kex=("mlkem768x25519-sha256", "curve25519-sha256", "ext-info-s", STRICT_KEX_SERVER),
    host_key=("ssh-ed25519", "rsa-sha2-512"),
    ciphers_c2s=("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"),
    ciphers_s2c=("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"),
    macs_c2s=("hmac-sha2-256-etm@openssh.com",),
    macs_s2c=("hmac-sha2-256-etm@openssh.com",),
    compression_c2s=("none", "zlib@openssh.com"),
    compression_s2c=("none", "zlib@openssh.com"),
)
ED = HostKey("ssh-ed25519", "ssh-ed25519", 256, "SHA256:ed", verified=True)
RSA3072 = HostKey("rsa-sha2-512", "ssh-rsa", 3072, "SHA256:rsa3072", verified=True)
CLEAN = SshObservation(
    identification="SSH-2.0-OpenSSH_9.9",
    protocol_version="2.0",
    software="OpenSSH_9.9",
    kexinit=CLEAN_KEX,
    host_keys=(ED, RSA3072),
    auth_methods=("publickey",),
)


def kex(**changes: tuple[str, ...]) -> SshObservation:
    """CLEAN with some KEXINIT lists replaced; cipher/mac/compression set both ways."""
    fields: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("ciphers", "macs", "compression"):
            fields[f"{name}_c2s"] = fields[f"{name}_s2c"] = value
        else:
            fields[name] = value
    return replace(CLEAN, kexinit=replace(CLEAN_KEX, **fields))


NO_STRICT = ("curve25519-sha256", "mlkem768x25519-sha256")

# (case name, observation, {finding id: expected evidence or None for "any"}, absent ids)
CASES: list[tuple[str, SshObservation, dict[str, tuple[str, ...] | None], set[str]]] = [
    ("clean", CLEAN, {}, set()),
    (
        "ssh1 only",
        replace(CLEAN, protocol_version="1.5", kexinit=None, host_keys=(), auth_methods=()),
        {"ssh.protocol.v1": ("protocol 1.5",)},
        {"ssh.kex.no_pq"},
    ),
    ("ssh 1.99", replace(CLEAN, protocol_version="1.99"), {"ssh.protocol.v1": None}, set()),
    (
        "sha1 kex",
        kex(
            kex=(
                "curve25519-sha256",
                "diffie-hellman-group14-sha1",
                "diffie-hellman-group-exchange-sha1",
                STRICT_KEX_SERVER,
            )
        ),
        {
            "ssh.kex.sha1": ("diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"),
            "ssh.kex.no_pq": None,
        },
        {"ssh.kex.weak_group"},
    ),
    (
        "group1",
        kex(
            kex=(
                "diffie-hellman-group1-sha1",
                "sntrup761x25519-sha512@openssh.com",
                STRICT_KEX_SERVER,
            )
        ),
        {
            "ssh.kex.sha1": ("diffie-hellman-group1-sha1",),
            "ssh.kex.weak_group": ("diffie-hellman-group1-sha1",),
        },
        {"ssh.kex.no_pq"},
    ),
    (
        "ssh-rsa signatures",
        kex(host_key=("rsa-sha2-512", "ssh-rsa")),
        {"ssh.hostkey.sha1": ("ssh-rsa",)},
        {"ssh.hostkey.weak_rsa", "ssh.hostkey.dsa"},
    ),
    (
        "dsa offered and seen",
        replace(
            kex(host_key=("ssh-ed25519", "ssh-dss")),
            host_keys=(ED, HostKey("ssh-dss", "ssh-dss", 1024, "SHA256:dsa", verified=True)),
        ),
        {"ssh.hostkey.dsa": ("ssh-dss", "ssh-dss 1024 bits SHA256:dsa")},
        set(),
    ),
    (
        "rsa 1024",
        replace(
            CLEAN,
            host_keys=(HostKey("rsa-sha2-512", "ssh-rsa", 1024, "SHA256:small", verified=True),),
        ),
        {"ssh.hostkey.weak_rsa": ("ssh-rsa 1024 bits SHA256:small",)},
        {"ssh.hostkey.sha1"},
    ),
    (
        "rsa 2048 is enough",
        replace(
            CLEAN, host_keys=(HostKey("rsa-sha2-512", "ssh-rsa", 2048, "SHA256:x", verified=True),)
        ),
        {},
        {"ssh.hostkey.weak_rsa"},
    ),
    (
        "broken ciphers",
        kex(ciphers=("aes128-ctr", "arcfour", "arcfour256", "3des-cbc", "blowfish-cbc")),
        {
            "ssh.cipher.broken": ("arcfour", "arcfour256", "3des-cbc", "blowfish-cbc"),
            "ssh.cipher.cbc": ("3des-cbc", "blowfish-cbc"),
        },
        set(),
    ),
    (
        "cbc with strict kex",
        kex(ciphers=("aes128-ctr", "aes256-cbc")),
        {"ssh.cipher.cbc": ("aes256-cbc",)},
        {"ssh.cipher.broken", "ssh.terrapin"},
    ),
    (
        "macs",
        kex(
            macs=(
                "hmac-sha2-256-etm@openssh.com",
                "hmac-md5",
                "hmac-sha1",
                "hmac-sha1-96",
                "umac-64@openssh.com",
            )
        ),
        {
            "ssh.mac.md5": ("hmac-md5",),
            "ssh.mac.sha1": ("hmac-sha1", "hmac-sha1-96"),
            "ssh.mac.short": ("hmac-sha1-96", "umac-64@openssh.com"),
            "ssh.mac.encrypt_and_mac": (
                "hmac-md5",
                "hmac-sha1",
                "hmac-sha1-96",
                "umac-64@openssh.com",
            ),
        },
        set(),
    ),
    (
        "etm only",
        kex(macs=("hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com")),
        {},
        {"ssh.mac.encrypt_and_mac", "ssh.mac.short"},
    ),
    (
        "non-etm MACs with AEAD ciphers only",
        kex(ciphers=("aes256-gcm@openssh.com",), macs=("hmac-sha2-256",)),
        {},
        {"ssh.mac.encrypt_and_mac"},
    ),
    (
        "pre-auth zlib",
        kex(compression=("none", "zlib")),
        {"ssh.compression.pre_auth": ("zlib",)},
        set(),
    ),
    ("delayed zlib", kex(compression=("zlib@openssh.com",)), {}, {"ssh.compression.pre_auth"}),
    (
        "terrapin chacha",
        kex(kex=NO_STRICT),
        {"ssh.terrapin": ("chacha20-poly1305@openssh.com", f"no {STRICT_KEX_SERVER}")},
        set(),
    ),
    (
        "terrapin cbc+etm",
        kex(kex=NO_STRICT, ciphers=("aes128-ctr", "aes128-cbc")),
        {
            "ssh.terrapin": (
                "aes128-cbc",
                "hmac-sha2-256-etm@openssh.com",
                f"no {STRICT_KEX_SERVER}",
            ),
            "ssh.cipher.cbc": ("aes128-cbc",),
        },
        set(),
    ),
    (
        "cbc without etm and no strict kex is not terrapin",
        kex(kex=NO_STRICT, ciphers=("aes128-cbc",), macs=("hmac-sha2-256",)),
        {"ssh.cipher.cbc": None, "ssh.mac.encrypt_and_mac": ("hmac-sha2-256",)},
        {"ssh.terrapin"},
    ),
    (
        "ctr/gcm without strict kex is not terrapin",
        kex(kex=NO_STRICT, ciphers=("aes128-ctr", "aes256-gcm@openssh.com")),
        {},
        {"ssh.terrapin"},
    ),
    (
        "password",
        replace(CLEAN, auth_methods=("publickey", "password")),
        {"ssh.auth.password": ("password",)},
        {"ssh.auth.keyboard_interactive"},
    ),
    (
        "keyboard-interactive",
        replace(CLEAN, auth_methods=("keyboard-interactive",)),
        {"ssh.auth.keyboard_interactive": ("keyboard-interactive",)},
        {"ssh.auth.password"},
    ),
    (
        "auth not determined clears nothing and raises nothing",
        replace(CLEAN, auth_methods=(), not_determined=("auth_methods",)),
        {},
        {"ssh.auth.password"},
    ),
    (
        "no pq",
        kex(kex=("curve25519-sha256", STRICT_KEX_SERVER)),
        {"ssh.kex.no_pq": ("kex offered: curve25519-sha256",)},
        set(),
    ),
]


@pytest.mark.parametrize(
    ("obs", "expected", "absent"),
    [pytest.param(o, e, a, id=name) for name, o, e, a in CASES],
)
def test_findings_table(
    obs: SshObservation, expected: dict[str, tuple[str, ...] | None], absent: set[str]
) -> None:
    got = {f.id: f for f in evaluate(obs)}
    assert set(got) == set(expected), sorted(got)
    for fid, evidence in expected.items():
        if evidence is not None:
            assert got[fid].evidence == evidence, fid
        assert got[fid].references, fid
        assert got[fid].remediation, fid
    assert not absent & set(got)


def test_every_finding_of_the_issue_is_reachable() -> None:
    required = {
        "ssh.protocol.v1",
        "ssh.kex.sha1",
        "ssh.kex.weak_group",
        "ssh.hostkey.sha1",
        "ssh.hostkey.dsa",
        "ssh.hostkey.weak_rsa",
        "ssh.cipher.broken",
        "ssh.cipher.cbc",
        "ssh.mac.md5",
        "ssh.mac.sha1",
        "ssh.mac.short",
        "ssh.mac.encrypt_and_mac",
        "ssh.compression.pre_auth",
        "ssh.terrapin",
        "ssh.auth.password",
        "ssh.auth.keyboard_interactive",
        "ssh.kex.no_pq",
    }
    assert {s.id for s in load_db().findings} == required
    produced = {fid for _, _, expected, _ in CASES for fid in expected}
    assert produced == required


def test_entry_point_reads_the_result() -> None:
    result = EndpointResult(
        host="192.0.2.10",
        address="192.0.2.10",
        port=22,
        channel=Channel.SSH,
        status=Status.OK,
        ssh=replace(CLEAN, auth_methods=("password",)),
    )
    assert [f.id for f in findings(result, now=SCAN_TIME)] == ["ssh.auth.password"]
    assert findings(replace(result, ssh=None), now=SCAN_TIME) == []


def test_database_records_are_typed_and_referenced() -> None:
    db = load_db()
    assert db.lookup("cipher", "arcfour") is not None
    rec = db.lookup("kex", "diffie-hellman-group1-sha1")
    assert rec is not None and rec.status == "broken" and "RFC 9142" in rec.reference
    assert db.lookup("cipher", "none") != db.lookup("compression", "none")
    for spec in db.findings:
        if spec.kind == "tag":
            assert spec.category is not None and spec.tag is not None
            assert db.tagged(spec.category, spec.tag), spec.id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[algorithm]]\nname="x"\ncategory="kex"\nstatus="ok"\naxis="mitm"\n'
            'reason="r"\nreference="RFC 1"\ncolour="red"\n',
            "unknown keys",
        ),
        (
            '[[algorithm]]\nname="x"\ncategory="kex"\nstatus="meh"\naxis="mitm"\n'
            'reason="r"\nreference="RFC 1"\n',
            "bad category or status",
        ),
        (
            '[[algorithm]]\nname="x"\ncategory="kex"\nstatus="ok"\naxis="sideways"\n'
            'reason="r"\nreference="RFC 1"\n',
            "bad axis",
        ),
        (
            '[[finding]]\nid="ssh.x"\nkind="tag"\ncategory="kex"\ntag="t"\ntitle="t"\n'
            'severity="high"\naxis="mitm"\nremediation="r"\nreferences=[]\n',
            "no reference",
        ),
    ],
)
def test_malformed_database_is_rejected(text: str, message: str) -> None:
    with pytest.raises(AlgorithmDbError, match=message):
        parse_db(text)
