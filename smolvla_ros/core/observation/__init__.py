"""Observations from streams: as-of alignment, assembly against the contract, stream rates."""
