"""The demo estate: a small management network on loopback, dressed as the four
platforms chanscan exists for. Used by ``chanscan demo`` and the demo's tests.

Every server is built from the lab's own parts (Python ``ssl`` and asyncssh servers
on the lab loop); nothing here needs a Debian package, so ``pip install .`` is enough.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chanscan.lab.authd_server import add_authd_server
from chanscan.lab.certs import LabCA, new_key, self_signed
from chanscan.lab.core import Lab
from chanscan.lab.imitations import (
    ESXI_67,
    ESXI_DEFAULT_OU,
    VCENTER_80,
    WindowsIdentity,
    rdp,
    vsphere_sdk,
    winrm,
    xapi_host,
)
from chanscan.lab.ssh_servers import start_asyncssh, start_legacy_asyncssh
from chanscan.lab.tls_context import context_for
from chanscan.lab.tls_servers import plaintext_http_server

BLOCK = "127.42.0"


@dataclass(frozen=True)
class Estate:
    targets: tuple[str, ...]  # host:port strings to scan
    ca_bundle: Path  # the vCenter's VMCA root, as an operator would pass it
    hosts: dict[str, str]  # address -> what it pretends to be


def start_estate(lab: Lab, workdir: Path) -> Estate:
    vc, esx, xen, hv = (f"{BLOCK}.{i}" for i in (10, 20, 30, 40))

    # vCenter 8: certificate from its VMCA (trusted with --ca-bundle), TLS 1.2+ AEAD
    # only, modern SSH.
    vmca = LabCA("CA")
    leaf = vmca.issue(vc, "vcsa01.lab.example", days=365)
    vc_ctx = context_for(
        leaf,
        [vmca.issued],
        minimum=ssl.TLSVersion.TLSv1_2,
        ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
    )
    vsphere_sdk(lab, vc, 443, VCENTER_80, context=vc_ctx)
    start_asyncssh(lab, vc, 22, name="vcsa-ssh", key_types=("ssh-ed25519", "ecdsa-sha2-nistp256"))

    # ESXi 6.7: the default self-signed certificate, TLS 1.0 and legacy suites still
    # on, authd on 902 with the same key, legacy SSH algorithms, HTTP on 80.
    esx_cert = self_signed(esx, "esx67.lab.example", org_unit=ESXI_DEFAULT_OU, days=365 * 5)
    esx_ctx = context_for(esx_cert, legacy=True)
    vsphere_sdk(lab, esx, 443, ESXI_67, context=esx_ctx)
    add_authd_server(lab, esx, 902, context=esx_ctx)
    start_legacy_asyncssh(lab, esx, 22)
    plaintext_http_server(lab, esx, 80)

    # XenServer: an expired, self-signed RSA-1024 certificate with a SHA-1 signature.
    now = datetime.now(UTC)
    xen_cert = self_signed(
        xen,
        "xen01.lab.example",
        key=new_key("rsa", 1024),
        hash_name="sha1",
        not_before=now - timedelta(days=3 * 365),
        not_after=now - timedelta(days=30),
    )
    xapi_host(lab, xen, 443, "XenServer", "7.1.2", context=context_for(xen_cert, legacy=True))

    # Hyper-V host: WinRM over HTTPS and over plain HTTP, RDP with NLA.
    ident = WindowsIdentity(os_version=(10, 0, 20348))  # Windows Server 2022
    winrm(lab, hv, 5986, tls=True, identity=ident)
    winrm(lab, hv, 5985, identity=ident)
    rdp(lab, hv, 3389, identity=ident)

    bundle = workdir / "vmca-root.pem"
    bundle.write_bytes(vmca.issued.pem)
    targets = (
        f"{vc}:443", f"{vc}:22",
        f"{esx}:443", f"{esx}:902", f"{esx}:22", f"{esx}:80",
        f"{xen}:443",
        f"{hv}:5986", f"{hv}:5985", f"{hv}:3389",
    )  # fmt: skip
    hosts = {
        vc: "vCenter 8.0 (hardened)",
        esx: "ESXi 6.7 (legacy)",
        xen: "XenServer 7.1 (expired RSA-1024 certificate)",
        hv: "Hyper-V / Windows Server 2022",
    }
    return Estate(targets, bundle, hosts)
