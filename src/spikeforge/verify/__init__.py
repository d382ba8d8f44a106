"""Integrity of a run's outputs: checksums against manifests, each format's own reader."""

from spikeforge.verify.command import Problem, Report, remove_outputs, verify

__all__ = ["Problem", "Report", "remove_outputs", "verify"]
