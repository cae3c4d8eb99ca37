"""Observations: what a probe saw on the wire, before any judgement."""
