"""SSH grading: the cap table for SSH findings and what an A+ asks of an SSH server.

The letters follow the same idea as the TLS caps: a broken primitive is F, a primitive
that standards bodies have retired but that is not yet practically broken is B or C, and
a missing modern feature is A-. Eavesdropping covers the ciphers, MACs and key exchange
that protect the session; MITM covers what authenticates the server and resists tampering
with the handshake (host keys, Terrapin) and what a successful impersonation would yield
(password authentication hands the impostor a reusable secret).
"""

from __future__ import annotations

from chanscan.grading.caps import CapRule
from chanscan.model import Axis
from chanscan.obs.ssh import SshObservation

E = Axis.EAVESDROPPING
M = Axis.MITM

SSH_CAPS: tuple[CapRule, ...] = (
    CapRule("ssh.protocol.v1", E, "F", "RFC 4253 5; CVE-2001-0361", "chanscan"),
    CapRule("ssh.protocol.v1", M, "F", "RFC 4253 5; CVE-2001-1473", "chanscan"),
    CapRule("ssh.cipher.broken", E, "F", "RFC 8758; RFC 9142 (none, arcfour, des)", "chanscan"),
    CapRule("ssh.mac.md5", E, "C", "RFC 6151; RFC 9142", "chanscan"),
    CapRule(
        "ssh.kex.weak_group", E, "C", "RFC 9142 4 (group1 MUST NOT); CVE-2015-4000", "chanscan"
    ),
    CapRule("ssh.kex.sha1", E, "B", "RFC 9142 4 (SHA-1 kex SHOULD NOT)", "chanscan"),
    CapRule("ssh.cipher.cbc", E, "B", "CVE-2008-5161; RFC 4344", "chanscan"),
    CapRule("ssh.mac.short", E, "B", "RFC 6668; NIST SP 800-107 Rev. 1 5.3.3", "chanscan"),
    CapRule("ssh.mac.sha1", E, "A-", "RFC 6668; NIST SP 800-131A Rev. 2 9", "chanscan"),
    CapRule("ssh.mac.encrypt_and_mac", E, "A-", "OpenSSH PROTOCOL 1.5 (-etm MACs)", "chanscan"),
    CapRule("ssh.compression.pre_auth", E, "B", "RFC 4253 6.2; CVE-2012-4929 (CRIME)", "chanscan"),
    CapRule("ssh.kex.no_pq", E, "A-", "draft-ietf-sshm-mlkem-hybrid-kex; OpenSSH 10.0", "chanscan"),
    CapRule("ssh.hostkey.dsa", M, "C", "RFC 9142; FIPS 186-5 (DSA removed)", "chanscan"),
    CapRule("ssh.hostkey.sha1", M, "B", "RFC 8332; RFC 9142", "chanscan"),
    CapRule("ssh.hostkey.weak_rsa", M, "B", "RFC 8332 3; NIST SP 800-131A Rev. 2", "chanscan"),
    CapRule("ssh.terrapin", M, "B", "CVE-2023-48795", "chanscan"),
    CapRule("ssh.auth.password", M, "B", "RFC 4252 8; NIST SP 800-63B 5.1.1", "chanscan"),
    CapRule("ssh.auth.keyboard_interactive", M, "A-", "RFC 4256", "chanscan"),
)


def eavesdropping_plus(ssh: SshObservation) -> bool:
    """An uncapped SSH server earns A+ on eavesdropping when the key exchange list was
    actually seen; without it we cannot tell an excellent server from an unknown one."""
    return ssh.kexinit is not None and not ssh.ssh1


def mitm_plus(ssh: SshObservation) -> bool:
    """A+ on MITM needs a host key whose signature verified and strict key exchange
    (the Terrapin countermeasure) announced."""
    return any(k.verified for k in ssh.host_keys) and ssh.strict_kex is True
