"""The lab: management-like endpoints on loopback addresses, for tests, benchmarks and
``chanscan demo``.

Every server is started through a :class:`Lab` and stopped by the handle that started
it: Python servers run on one asyncio loop in a lab thread (so asyncssh and ``ssl``
servers need no second scheduler in the scanner), real daemons (``sshd``,
``openssl s_server``) run as child processes stopped by pid. Only loopback addresses
are accepted: the lab refuses anything else.
"""

from chanscan.lab.core import Handle, Lab, LabError, require_loopback

__all__ = ["Handle", "Lab", "LabError", "require_loopback"]
