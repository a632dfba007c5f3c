"""As-of alignment of time-stamped streams, live (per sample) and in batch (a whole recording).

Live: each stream (joint state, each camera) keeps a bounded, stamp-ordered buffer; an observation
at time t takes, per stream, the latest sample with stamp <= t, and refuses it when it is older than
the stream's max age (a stale observation is never sent). Batch: the bag converter resamples a whole
episode onto the exact 1/fps grid with the same rule, using numpy ``searchsorted`` over the sorted
stamp arrays. Both forms implement one rule, ``stamp <= t`` and ``t - stamp <= max_age``, so the
frames the converter writes are the frames the live path built.

Stamps are int nanoseconds (header stamps, not receive times).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar('T')


class AlignmentError(ValueError):
    """Base class of alignment errors."""


class StaleStreamError(AlignmentError):
    """One or more streams have no sample usable at the requested time.

    ``report`` lists every stream's problem (missing or stale, with ages), not just the first.
    """

    def __init__(self, report: AlignmentReport) -> None:
        self.report = report
        super().__init__(report.describe())


class UnsortedStampsError(AlignmentError):
    """A batch stamp array that is not sorted (non-decreasing)."""


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One time-stamped value of a stream."""

    stamp_ns: int
    value: T


@dataclass(frozen=True)
class StreamStatus:
    """How one stream looks at time t: its age, or why it is unusable."""

    name: str
    age_ns: int | None  # t - stamp of the as-of sample; None when there is none
    max_age_ns: int | None  # None: unbounded

    @property
    def missing(self) -> bool:
        return self.age_ns is None

    @property
    def stale(self) -> bool:
        return (self.age_ns is not None and self.max_age_ns is not None
                and self.age_ns > self.max_age_ns)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale)


@dataclass(frozen=True)
class AlignmentReport:
    """Per-stream status at one time ``t_ns``."""

    t_ns: int
    streams: tuple[StreamStatus, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.streams)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams if s.missing)

    @property
    def stale(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams if s.stale)

    def describe(self) -> str:
        """E.g. ``at t=...: missing ['wrist']; stale front (age 0.412 s > max 0.150 s)``."""
        parts = []
        if self.missing:
            parts.append(f'no sample at or before t yet from {list(self.missing)}')
        for s in self.streams:
            if s.stale:
                parts.append(f'{s.name} is stale (age {s.age_ns / 1e9:.3f} s > max '
                             f'{s.max_age_ns / 1e9:.3f} s)')
        return f'at t={self.t_ns} ns: ' + ('; '.join(parts) if parts else 'all streams fresh')


class StreamBuffer(Generic[T]):
    """Bounded buffer of one stream's samples, kept ordered by stamp.

    Samples normally arrive in stamp order (append is O(1)); a late one is inserted in place.
    When full, the oldest sample is forgotten. Not thread-safe: the owner serialises access.
    """

    def __init__(self, name: str, capacity: int = 64, max_age_ns: int | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f'capacity must be an int >= 1, got {capacity!r}')
        if max_age_ns is not None and max_age_ns < 0:
            raise ValueError(f'max_age_ns must be >= 0 or None, got {max_age_ns}')
        self.name = name
        self.capacity = capacity
        self.max_age_ns = max_age_ns
        self._stamps: list[int] = []
        self._values: list[T] = []
        self._floor_ns: int | None = None

    def __len__(self) -> int:
        return len(self._stamps)

    def discard_before(self, t_ns: int) -> None:
        """Forget the samples stamped before t, and ignore any such sample that arrives later.

        For when the world changed at t (a simulator's reset, an operator's stop): what was
        observed before must not make an observation after it, including a message still in
        flight at t.
        """
        t_ns = int(t_ns)
        i = bisect_left(self._stamps, t_ns)
        del self._stamps[:i]
        del self._values[:i]
        self._floor_ns = t_ns

    def add(self, stamp_ns: int, value: T) -> None:
        """Insert a sample; a sample with the same stamp as an existing one replaces it; one
        stamped before a :meth:`discard_before` time is ignored."""
        stamp_ns = int(stamp_ns)
        if self._floor_ns is not None and stamp_ns < self._floor_ns:
            return
        if not self._stamps or stamp_ns > self._stamps[-1]:
            self._stamps.append(stamp_ns)
            self._values.append(value)
        else:
            i = bisect_right(self._stamps, stamp_ns)
            if i > 0 and self._stamps[i - 1] == stamp_ns:
                self._values[i - 1] = value
                return
            self._stamps.insert(i, stamp_ns)
            self._values.insert(i, value)
        if len(self._stamps) > 2 * self.capacity:  # trim in batches: amortised O(1) appends
            del self._stamps[:-self.capacity]
            del self._values[:-self.capacity]

    def latest(self) -> Sample[T] | None:
        """The newest sample, whatever its age."""
        if not self._stamps:
            return None
        return Sample(self._stamps[-1], self._values[-1])

    def as_of(self, t_ns: int) -> Sample[T] | None:
        """The latest sample with stamp <= t_ns (None if none), whatever its age."""
        i = bisect_right(self._stamps, int(t_ns))  # list holds at most 2 * capacity samples
        if i == 0:
            return None
        return Sample(self._stamps[i - 1], self._values[i - 1])

    def status(self, t_ns: int) -> StreamStatus:
        sample = self.as_of(t_ns)
        age = None if sample is None else int(t_ns) - sample.stamp_ns
        return StreamStatus(self.name, age, self.max_age_ns)

    def lookup(self, t_ns: int) -> Sample[T]:
        """The as-of sample, or StaleStreamError when it is missing or too old."""
        status = self.status(t_ns)
        if not status.ok:
            raise StaleStreamError(AlignmentReport(int(t_ns), (status,)))
        sample = self.as_of(t_ns)
        assert sample is not None
        return sample


class StreamSet:
    """Named stream buffers looked up together at one time (one observation)."""

    def __init__(self, buffers: Sequence[StreamBuffer]) -> None:
        names = [b.name for b in buffers]
        if len(set(names)) != len(names):
            raise ValueError(f'stream names must be unique, got {names}')
        self.buffers: dict[str, StreamBuffer] = {b.name: b for b in buffers}

    def __getitem__(self, name: str) -> StreamBuffer:
        return self.buffers[name]

    def report(self, t_ns: int) -> AlignmentReport:
        return AlignmentReport(int(t_ns), tuple(b.status(t_ns) for b in self.buffers.values()))

    def lookup(self, t_ns: int) -> dict[str, Sample]:
        """Every stream's as-of sample, or StaleStreamError listing all unusable streams."""
        report = self.report(t_ns)
        if not report.ok:
            raise StaleStreamError(report)
        out = {}
        for name, buffer in self.buffers.items():
            sample = buffer.as_of(t_ns)
            assert sample is not None
            out[name] = sample
        return out


# -- batch form (bag conversion) -----------------------------------------------------------------

def frame_grid(start_ns: int, end_ns: int, fps: float) -> np.ndarray:
    """Stamps of the exact 1/fps grid from start_ns up to end_ns inclusive: int64 [N].

    Frame i is at ``start_ns + round(i * 1e9 / fps)`` (no accumulated rounding drift).
    """
    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    if end_ns < start_ns:
        return np.zeros(0, dtype=np.int64)
    n = int(np.floor((end_ns - start_ns) * fps / 1e9 + 1e-9)) + 1
    offsets = np.rint(np.arange(n, dtype=np.float64) * (1e9 / fps)).astype(np.int64)  # [N]
    return int(start_ns) + offsets


def _check_sorted(stamps: np.ndarray, name: str) -> np.ndarray:
    s = np.asarray(stamps)
    if s.ndim != 1 or not np.issubdtype(s.dtype, np.integer):
        raise UnsortedStampsError(f'{name}: stamps must be a 1-D integer array (ns), '
                                  f'got {s.dtype} {s.shape}')
    if s.size > 1 and np.any(np.diff(s) < 0):
        i = int(np.flatnonzero(np.diff(s) < 0)[0])
        raise UnsortedStampsError(f'{name}: stamps are not sorted at index {i + 1} '
                                  f'({s[i + 1]} < {s[i]}); sort the stream first')
    return s.astype(np.int64, copy=False)


def asof_indices(stamps: np.ndarray, grid: np.ndarray, max_age_ns: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each grid time, the index of the latest sample with stamp <= t, and its validity.

    Returns (indices int64 [N], valid bool [N]); an index is -1 where no sample precedes t, and
    valid is False there or where ``t - stamp > max_age_ns``. Equal stamps resolve to the last.
    """
    s = _check_sorted(stamps, 'stamps')
    g = np.asarray(grid, dtype=np.int64)  # [N]
    idx = np.searchsorted(s, g, side='right') - 1  # [N], -1 before the first sample
    valid = idx >= 0
    if max_age_ns is not None:
        ages = g - s[np.maximum(idx, 0)] if s.size else np.zeros_like(g)  # [N]
        valid &= ages <= max_age_ns
    return idx.astype(np.int64), valid


@dataclass(frozen=True)
class BatchAlignment:
    """As-of indices of several streams on one grid, and which grid points are usable."""

    grid: np.ndarray  # int64 [N]
    indices: Mapping[str, np.ndarray]  # name -> int64 [N]
    valid: Mapping[str, np.ndarray]  # name -> bool [N]

    @property
    def all_valid(self) -> np.ndarray:
        """bool [N]: every stream usable at that grid point (the frames a converter keeps)."""
        out = np.ones(self.grid.shape, dtype=bool)
        for v in self.valid.values():
            out &= v
        return out

    def invalid_counts(self) -> dict[str, int]:
        """Grid points each stream could not serve (for the per-episode sync report)."""
        return {name: int((~v).sum()) for name, v in self.valid.items()}


def align_batch(stamps: Mapping[str, np.ndarray], grid: np.ndarray,
                max_age_ns: Mapping[str, int | None]) -> BatchAlignment:
    """As-of indices of every stream on ``grid``; ``max_age_ns`` needs an entry per stream."""
    missing = [n for n in stamps if n not in max_age_ns]
    if missing:
        raise AlignmentError(f'no max age given for streams {missing}')
    g = np.asarray(grid, dtype=np.int64)
    indices, valid = {}, {}
    for name, s in stamps.items():
        try:
            indices[name], valid[name] = asof_indices(s, g, max_age_ns[name])
        except UnsortedStampsError as exc:
            raise UnsortedStampsError(f'stream {name!r}: {exc}') from None
    return BatchAlignment(g, indices, valid)
