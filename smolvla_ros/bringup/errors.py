"""Typed errors of the bringup tools.

Each error carries a message that names where the problem is (file, node, key) so that a user can
fix a profile without reading our code; the CLI prints the message and exits non-zero.
"""
from __future__ import annotations


class BringupError(Exception):
    """Base class of every bringup error (never raised itself)."""


class ProfileError(BringupError, ValueError):
    """A profile file is missing, malformed or inconsistent."""


class ArgumentError(BringupError, ValueError):
    """A ``name:=value`` argument is malformed, unknown, missing or not among its choices."""


class SubstitutionError(ProfileError):
    """A ``$(...)`` substitution is malformed, unknown or refers to an undeclared argument."""


class ExecutableNotFoundError(BringupError, RuntimeError):
    """A node's or process's executable cannot be found (nothing has been started)."""
