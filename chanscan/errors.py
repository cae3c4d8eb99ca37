"""The exceptions chanscan raises, and what each means for the user.

    ChanscanError                 base; never escapes ``cli.main`` as a traceback
    ├── UsageError                bad command line or input file -> exit 2
    │   └── ConfigError           a targets/policy/waiver file is wrong (names file and line)
    │       └── ScopeError        the scan would exceed --max-hosts
    ├── ReportFormatError         a saved JSON report cannot be read -> exit 2
    └── ProbeError                one endpoint misbehaved; recorded as that endpoint's
        │                         ``status="error"`` and the scan goes on
        ├── ProtocolError         the peer spoke, but not the protocol we expected
        └── ConnectError          refused / reset / unreachable mid-probe

Anything else that escapes is a bug: exit 4 with a one-line message.
"""

from __future__ import annotations


class ChanscanError(Exception):
    """Base class of every error chanscan raises on purpose."""


class UsageError(ChanscanError):
    """The user asked for something chanscan cannot do as asked (exit 2)."""


class ConfigError(UsageError):
    """An input file (targets, policy, waivers, pins) is malformed."""


class ScopeError(ConfigError):
    """Expanding the targets would exceed the scope guard."""


class ReportFormatError(UsageError):
    """A saved report is not a chanscan JSON report this version can read."""


class ProbeError(ChanscanError):
    """A single endpoint could not be probed; becomes an error row, never fatal."""


class ProtocolError(ProbeError):
    """The peer answered, but not with the protocol we expected."""


class ConnectError(ProbeError):
    """The TCP connection was refused, reset or could not be made.

    ``kind`` is one of ``refused``, ``timeout`` (no TCP answer), ``reset``,
    ``unreachable``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
