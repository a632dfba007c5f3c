"""Per-episode and aggregated feature statistics as LeRobot's ``compute_stats.py`` computes
them (docs/lerobot_compat.md, "Datasets").

Numbers: min, max, mean, std, count over time (axis 0). Images: an evenly spaced sample of frames
(``sample_count``), downsampled by striding to ~150 px when the larger side is >= 300, reduced per
channel to shape (3, 1, 1) and divided by 255. Aggregation: count-weighted mean, parallel variance,
min of mins, max of maxes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Stats = dict[str, np.ndarray]


def sample_count(length: int) -> int:
    """Frames LeRobot samples from an episode of ``length`` frames for image stats."""
    return max(min(100, length), min(int(length ** 0.75), 10000))


def sample_indices(length: int) -> np.ndarray:
    """Evenly spaced frame indices (int64 [n]) used for image stats."""
    return np.round(np.linspace(0, length - 1, sample_count(length))).astype(np.int64)


def downsample(img: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    """Stride-downsample an [H, W, C] image whose larger side is >= ``threshold``."""
    h, w = img.shape[:2]
    if max(h, w) < threshold:
        return img
    factor = int(w / target) if w > h else int(h / target)
    return img[::factor, ::factor]


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats of a [N, D] (or [N]) array over axis 0, float64 results of shape [D] ([1])."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]  # [N, 1]
    return {'min': v.min(axis=0), 'max': v.max(axis=0), 'mean': v.mean(axis=0),
            'std': v.std(axis=0), 'count': np.array([v.shape[0]], dtype=np.int64)}


def image_stats(frames: Sequence[np.ndarray]) -> Stats:
    """Stats of sampled RGB uint8 [H, W, 3] frames, per channel, shape (3, 1, 1), in [0, 1]."""
    x = np.stack([downsample(f) for f in frames]).astype(np.float64)  # [N, h, w, 3]
    per = x.transpose(3, 0, 1, 2).reshape(3, -1)  # [3, N*h*w]
    return {'min': per.min(axis=1).reshape(3, 1, 1) / 255.0,
            'max': per.max(axis=1).reshape(3, 1, 1) / 255.0,
            'mean': per.mean(axis=1).reshape(3, 1, 1) / 255.0,
            'std': per.std(axis=1).reshape(3, 1, 1) / 255.0,
            'count': np.array([len(frames)], dtype=np.int64)}


def aggregate(episodes: Sequence[Stats]) -> Stats:
    """Combine per-episode stats of one feature (count-weighted, parallel variance)."""
    counts = np.array([float(s['count'][0]) for s in episodes])  # [E]
    total = counts.sum()
    means = np.stack([s['mean'] for s in episodes])  # [E, ...]
    stds = np.stack([s['std'] for s in episodes])  # [E, ...]
    w = counts.reshape(-1, *([1] * (means.ndim - 1))) / total
    mean = (w * means).sum(axis=0)
    var = (w * (stds ** 2 + (means - mean) ** 2)).sum(axis=0)
    return {'min': np.min(np.stack([s['min'] for s in episodes]), axis=0),
            'max': np.max(np.stack([s['max'] for s in episodes]), axis=0),
            'mean': mean, 'std': np.sqrt(var), 'count': np.array([int(total)], dtype=np.int64)}


def to_json(stats: dict[str, Stats]) -> dict:
    """Nested lists, the layout of meta/stats.json."""
    return {k: {name: np.asarray(v).tolist() for name, v in s.items()} for k, s in stats.items()}
