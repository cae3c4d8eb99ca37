"""chanscan: grade the management channels of virtualization platforms for MITM and
eavesdropping exposure."""

__version__ = "0.1.0"
