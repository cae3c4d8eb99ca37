"""A real xrdp (Debian's package) for the RDP probe's tests: the security layer and the
encryption level are xrdp.ini's ``security_layer`` and ``crypt_level``, so standard RDP
security at Low, High or FIPS is a real server's answer, not an imitation.

xrdp never gets as far as a logon here (no sesman, nothing to log in to): the probe stops
after the MCS Connect Response.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from chanscan.lab.core import Handle, Lab, LabError, require_loopback

XRDP = "/usr/sbin/xrdp"
SECURITY_LAYERS = ("rdp", "tls", "negotiate")
CRYPT_LEVELS = ("none", "low", "medium", "high", "fips")


def xrdp_available() -> bool:
    return Path(XRDP).exists()


def start_xrdp(
    lab: Lab, address: str, port: int, *, security_layer: str = "rdp", crypt_level: str = "high"
) -> Handle:
    """xrdp on ``address:port`` with its own ini and log in a temp dir (the RSA keys for
    standard security are the package's ``/etc/xrdp/rsakeys.ini``)."""
    require_loopback(address)
    if not xrdp_available():
        raise LabError(f"{XRDP} not installed (Debian package xrdp)")
    if security_layer not in SECURITY_LAYERS or crypt_level not in CRYPT_LEVELS:
        raise LabError(f"xrdp: unknown security_layer {security_layer!r} / {crypt_level!r}")
    tmp = Path(tempfile.mkdtemp(prefix="chanscan-xrdp-"))
    lab.register(Handle("xrdp-tmp", address, port, lambda: shutil.rmtree(tmp, ignore_errors=True)))
    ini = tmp / "xrdp.ini"
    ini.write_text(
        "[Globals]\n"
        "ini_version=1\n"
        "fork=false\n"
        f"port=tcp://{address}:{port}\n"
        f"security_layer={security_layer}\n"
        f"crypt_level={crypt_level}\n"
        "certificate=\n"
        "key_file=\n"
        "ssl_protocols=TLSv1.2, TLSv1.3\n"
        "[Logging]\n"
        f"LogFile={tmp / 'xrdp.log'}\n"
        "LogLevel=INFO\n"
        "EnableSyslog=false\n"
        "[Channels]\n"
    )
    return lab.add_process(
        f"xrdp-{security_layer}-{crypt_level}",
        address,
        port,
        [XRDP, "--nodaemon", "--config", str(ini)],
        cwd=str(tmp),
    )
