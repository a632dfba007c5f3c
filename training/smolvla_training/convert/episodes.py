"""Episodes of a bag, resampled onto the exact 1/fps grid by the contract's as-of alignment.

The alignment itself is ``smolvla_ros.core.observation.alignment`` (``frame_grid`` /
``align_batch``), the rule the live executor applies per observation: per stream, the latest
sample with header stamp <= t, refused when older than the stream's max age. A grid point is a
frame only when every stream (state, action, each camera) is fresh there. Leading and trailing
unusable points are trimmed; an unusable stretch inside an episode (a stalled camera, a dropped
joint stream) splits it, because LeRobot frames must be contiguous at exactly 1/fps; pieces
shorter than ``min_frames`` are dropped. Everything that happened is in the per-episode sync report.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smolvla_ros.core.observation.alignment import align_batch, frame_grid
from smolvla_ros.core.robot.contract import RobotContract
from smolvla_training.convert.bag_source import BagStreams
from smolvla_training.convert.errors import ConvertError

STATE, ACTION = 'state', 'action'


@dataclass(frozen=True)
class EpisodePlan:
    """One output episode: grid stamps and, per stream, the message index used at each frame."""

    bag: Path
    grid: np.ndarray  # int64 [N] header-stamp times of the frames
    indices: dict[str, np.ndarray]  # stream -> int64 [N] message index (state, action, cameras)
    task: str
    report: dict

    @property
    def length(self) -> int:
        return int(self.grid.size)


def spans_from_events(streams: BagStreams) -> tuple[list[tuple[int, int]], list[str]]:
    """(start, stop) ns spans from episode events, else the whole bag; plus notes for the report.

    ``start`` opens an episode (closing an open one), ``stop`` closes it, ``discard`` drops the
    open episode or, if none is open, the last closed one. An episode still open at the end of
    the bag ends with the bag.
    """
    all_stamps = [streams.state.stamps, streams.action.stamps,
                  *(c.stamps for c in streams.cameras.values())]
    bag_start = int(min(int(s[0]) for s in all_stamps))
    bag_end = int(max(int(s[-1]) for s in all_stamps))
    if not streams.events:
        return [(bag_start, bag_end)], ['no episode events: one episode per bag']
    spans: list[tuple[int, int]] = []
    notes: list[str] = []
    open_at: int | None = None
    for t, event in sorted(streams.events):
        if event == 'start':
            if open_at is not None:
                spans.append((open_at, t))
                notes.append(f'start at {t} closed the episode open since {open_at}')
            open_at = t
        elif event == 'stop':
            if open_at is None:
                notes.append(f'stop at {t} without an open episode: ignored')
            else:
                spans.append((open_at, t))
                open_at = None
        elif event == 'discard':
            if open_at is not None:
                notes.append(f'discarded the episode open since {open_at}')
                open_at = None
            elif spans:
                dropped = spans.pop()
                notes.append(f'discarded the episode {dropped[0]}..{dropped[1]}')
    if open_at is not None:
        spans.append((open_at, bag_end))
        notes.append(f'episode open since {open_at} ended with the bag')
    return spans, notes


def _task_at(streams: BagStreams, t_ns: int, override: str | None, default: str) -> str:
    """--task, else the latest task at or before the episode start (transient-local), else the
    first one published later in the bag, else the contract default."""
    if override is not None:
        return override
    before = [text for t, text in streams.tasks if t <= t_ns]
    if before:
        return before[-1]
    return streams.tasks[0][1] if streams.tasks else default


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive True values."""
    padded = np.concatenate([[False], valid, [False]]).astype(np.int8)  # [N+2]
    edges = np.flatnonzero(np.diff(padded))  # starts and stops alternate
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _stream_report(stamps: np.ndarray, lo: int, hi: int, grid: np.ndarray, idx: np.ndarray,
                   valid: np.ndarray, max_age_ns: int | None) -> dict:
    inside = stamps[(stamps >= lo) & (stamps <= hi)]  # [M]
    gaps = np.diff(inside) / 1e9 if inside.size > 1 else np.zeros(0)
    span_s = (hi - lo) / 1e9
    ages = (grid - stamps[np.maximum(idx, 0)])[idx >= 0] / 1e9 if grid.size else np.zeros(0)
    return {
        'messages': int(inside.size),
        'rate_hz': round(inside.size / span_s, 3) if span_s > 0 else None,
        'max_gap_s': round(float(gaps.max()), 6) if gaps.size else None,
        'max_age_s': None if max_age_ns is None else max_age_ns / 1e9,
        'unusable_grid_points': int((~valid).sum()),
        'age_at_frames_p50_s': round(float(np.median(ages)), 6) if ages.size else None,
        'age_at_frames_max_s': round(float(ages.max()), 6) if ages.size else None,
    }


def plan_episodes(streams: BagStreams, contract: RobotContract, fps: float,
                  action_max_age_s: float | None, min_frames: int = 1,
                  task: str | None = None) -> tuple[list[EpisodePlan], list[dict]]:
    """Episode plans of one bag and a report entry per recorded span (kept or not)."""
    if not fps > 0:
        raise ConvertError(f'fps must be > 0, got {fps}')
    stamps = {STATE: streams.state.stamps, ACTION: streams.action.stamps,
              **{n: s.stamps for n, s in streams.cameras.items()}}
    max_age = {STATE: contract.state.max_age_ns,
               ACTION: None if action_max_age_s is None else round(action_max_age_s * 1e9),
               **{n: c.max_age_ns for n, c in contract.cameras.items()}}
    spans, notes = spans_from_events(streams)
    plans: list[EpisodePlan] = []
    reports: list[dict] = []
    for lo, hi in spans:
        grid = frame_grid(lo, hi, fps)  # int64 [G]
        aligned = align_batch(stamps, grid, max_age)
        keep = aligned.all_valid  # bool [G]
        runs = _runs(keep)
        kept = [(a, b) for a, b in runs if b - a >= min_frames]
        streams_report = {name: _stream_report(stamps[name], lo, hi, grid,
                                               aligned.indices[name], aligned.valid[name],
                                               max_age[name]) for name in stamps}
        ep_task = _task_at(streams, lo, task, contract.task.default)
        base = {'bag': str(streams.path), 'span_ns': [lo, hi], 'grid_points': int(grid.size),
                'frames_kept': int(sum(b - a for a, b in kept)),
                'pieces': [[a, b] for a, b in kept],
                'dropped_short_pieces': [[a, b] for a, b in runs if b - a < min_frames],
                'task': ep_task, 'streams': streams_report, 'notes': notes}
        reports.append(base)
        for a, b in kept:
            plans.append(EpisodePlan(
                streams.path, grid[a:b],
                {name: aligned.indices[name][a:b] for name in stamps}, ep_task, base))
    return plans, reports
