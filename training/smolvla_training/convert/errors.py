"""Typed errors of bag conversion: each names the bag, the topic and what to do about it."""
from __future__ import annotations


class ConvertError(ValueError):
    """Base class: a bag or an option the converter cannot turn into a dataset."""


class BagOpenError(ConvertError):
    """The bag cannot be opened or read (missing, not a rosbag2 directory, truncated mcap)."""


class RecoveryError(ConvertError):
    """A killed recording's bag holds nothing recoverable, or the recovered bag can't be written."""


class EmptyBagError(ConvertError):
    """The bag holds no messages (or none on the contract's topics)."""


class MissingTopicError(ConvertError):
    """A topic the contract needs is not in the bag (lists the topics that are)."""


class WrongMessageTypeError(ConvertError):
    """A contract topic was recorded with a different message type than the contract expects."""


class UnknownMessageTypeError(ConvertError):
    """A needed topic's type has no definition in the bag or in the registered type store."""


class NonMonotonicStampsError(ConvertError):
    """Header stamps of a stream go backwards (names the topic, the message index and stamps)."""


class NoFramesError(ConvertError):
    """No episode yields a single valid frame on the grid (every stream must be fresh)."""


class OutputExistsError(ConvertError):
    """The output directory exists already; the converter never overwrites a dataset."""


class DatasetCheckError(ValueError):
    """A dataset directory that fails ``--check`` (lists every problem found)."""

    def __init__(self, root: str, problems: list[str]) -> None:
        self.problems = problems
        lines = '\n  '.join(problems)
        super().__init__(f'{root}: {len(problems)} problem(s):\n  {lines}')
