"""The error every layer of the policy package raises for a bad input.

A shape, type or count is checked in the layer that owns it (docs/ARCHITECTURE.md, "Shape
checks"): the processors check their own arguments, SmolVLAPolicy the raw batch, VLAFlowMatching
its tensors. Their errors derive from PolicyInputError, so a caller catches one type whichever
layer found the problem.
"""
from __future__ import annotations


class PolicyInputError(ValueError):
    """A batch, noise tensor or real-time-chunking input with the wrong shape or type."""
