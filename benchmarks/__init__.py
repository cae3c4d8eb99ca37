"""Benchmarks of chanscan against the tools a user would otherwise run (issue 8).

``python -m benchmarks`` starts a loopback fleet of real servers, runs chanscan,
sslyze, ssh-audit and nmap against it alternately over several rounds, and writes
``benchmarks/results/latest.json`` and ``latest.md``. Nothing here sends a packet
beyond loopback: every address is checked with ``chanscan.lab.require_loopback``.
"""
