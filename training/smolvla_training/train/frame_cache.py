"""Decoded camera frames at model resolution, cached once per dataset and resolution.

Decoding AV1 at 640x480 for every sample costs more than a small model's training step on 2 CPU
cores (bench/train_step.py measures both), so each video is decoded once, sequentially, resized
the way the policy does (`resize_with_pad`, LeRobot's `resize_with_pad`), and stored as a uint8
memmap [rows, 3, h, w] in dataset row order. Training then reads frames by fancy indexing.

The cache key hashes what decides the frames: info.json, the episode metadata and every video
file's size and mtime, plus the resolution; a changed dataset gets a new cache. A cache is built
in a temporary directory and renamed into place, so a killed build leaves nothing half-written.
Resizing a cached frame again to the same size is the identity (bilinear, align_corners=False),
so the only difference to decoding on the fly is uint8 rounding after the resize (<= 0.5/255).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import shutil
import tempfile

import numpy as np
import torch

from smolvla_ros.policy.processor_smolvla import resize_with_pad
from smolvla_training.dataset.reader import LeRobotDatasetReader
from smolvla_training.dataset.video import VideoDecodeError
from smolvla_training.lerobot_format import TOLERANCE_S

DEFAULT_CACHE_DIR = Path('~/.cache/smolvla_ros/frames')
_RESIZE_BATCH = 64


def _digest(reader: LeRobotDatasetReader, size: tuple[int, int] | None) -> str:
    """Hash of everything that decides the cached frames (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps({'size': size, 'format': 1}).encode())
    root = reader.root
    paths = [root / 'meta' / 'info.json', *sorted((root / 'meta' / 'episodes').rglob('*.parquet')),
             *sorted((root / 'videos').rglob('*.mp4'))]
    for path in paths:
        stat = path.stat()
        h.update(f'{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}'.encode())
    h.update((root / 'meta' / 'info.json').read_bytes())
    return h.hexdigest()[:20]


def _frame_shape(reader: LeRobotDatasetReader, key: str,
                 size: tuple[int, int] | None) -> tuple[int, int, int]:
    if size is not None:
        return (3, size[1], size[0])  # size is (width, height)
    shape = reader.features[key]['shape']  # [H, W, C] in LeRobot's info.json
    names = reader.features[key].get('names') or ['height', 'width', 'channels']
    dims = dict(zip(names, shape, strict=False))
    return (3, int(dims.get('height', shape[0])), int(dims.get('width', shape[1])))


class FrameCache:
    """uint8 frames [rows, 3, h, w] per video key of one dataset, at `size` (w, h) or native."""

    def __init__(self, reader: LeRobotDatasetReader, size: tuple[int, int] | None,
                 cache_dir: str | os.PathLike[str] | None = None,
                 log: callable = print) -> None:
        self.reader = reader
        self.size = size
        base = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser()
        self.directory = base / f'{reader.root.name}-{_digest(reader, size)}'
        if not (self.directory / 'complete.json').exists():
            self._build(base, log)
        self.frames = {key: np.load(self.directory / f'{_safe(key)}.npy', mmap_mode='r')
                       for key in reader.video_keys}

    def get(self, key: str, rows: np.ndarray) -> np.ndarray:
        """uint8 [len(rows), 3, h, w] for global dataset rows."""
        return np.asarray(self.frames[key][rows])

    # -- building ------------------------------------------------------------------------------
    def _build(self, base: Path, log: callable) -> None:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f'.{self.directory.name}.', dir=base))
        try:
            for key in self.reader.video_keys:
                log(f'frame cache: decoding {key} of {self.reader.root} '
                    f'({len(self.reader)} frames) into {self.directory}')
                shape = (len(self.reader), *_frame_shape(self.reader, key, self.size))
                out = np.lib.format.open_memmap(tmp / f'{_safe(key)}.npy', mode='w+',
                                                dtype=np.uint8, shape=shape)
                self._decode_key(key, out)
                out.flush()
                del out
            (tmp / 'complete.json').write_text(json.dumps(
                {'dataset': str(self.reader.root), 'size': self.size,
                 'keys': list(self.reader.video_keys), 'rows': len(self.reader)}))
            try:
                tmp.rename(self.directory)
            except OSError:  # another process built it meanwhile
                if not (self.directory / 'complete.json').exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _wanted(self, key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Video file -> (frame times in the file [n] sorted, dataset rows [n])."""
        ts = self.reader.column('timestamp').astype(np.float64)
        by_file: dict[str, list[tuple[float, int]]] = {}
        for ep in self.reader.episodes:
            rel, offset = ep.videos[key]
            rows = np.arange(ep.from_index, ep.from_index + ep.length)
            by_file.setdefault(rel, []).extend(zip(offset + ts[rows], rows, strict=True))
        out = {}
        for rel, pairs in by_file.items():
            pairs.sort()
            out[rel] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        return out

    def _decode_key(self, key: str, out: np.ndarray) -> None:
        import av

        filled = np.zeros(len(out), dtype=bool)
        for rel, (times, rows) in self._wanted(key).items():
            path = self.reader.root / rel
            pending_rows: list[np.ndarray] = []
            pending: list[np.ndarray] = []
            try:
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    for frame in container.decode(stream):
                        t = float(frame.pts * stream.time_base)
                        lo = np.searchsorted(times, t - TOLERANCE_S, side='left')
                        hi = np.searchsorted(times, t + TOLERANCE_S, side='right')
                        if lo == hi:
                            continue
                        pending.append(frame.to_ndarray(format='rgb24'))
                        pending_rows.append(rows[lo:hi])
                        if len(pending) >= _RESIZE_BATCH:
                            self._flush(pending, pending_rows, out, filled)
            except av.FFmpegError as exc:
                raise VideoDecodeError(f'{path}: cannot decode ({exc})') from exc
            self._flush(pending, pending_rows, out, filled)
        if not filled.all():
            first = int(np.flatnonzero(~filled)[0])
            raise VideoDecodeError(
                f'{self.reader.root}: {key} has no frame within {TOLERANCE_S} s of the timestamp '
                f'of row {first} (and {int((~filled).sum()) - 1} more rows): the dataset\'s video '
                'and data are out of sync')

    def _flush(self, frames: list[np.ndarray], rows: list[np.ndarray], out: np.ndarray,
               filled: np.ndarray) -> None:
        if not frames:
            return
        batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)  # [B,3,H,W] uint8
        if self.size is not None:
            batch = resize_with_pad(batch.float() / 255.0, self.size[0], self.size[1])
            batch = (batch * 255.0).round().clamp(0, 255).to(torch.uint8)  # [B,3,h,w]
        arr = batch.numpy()
        for img, r in zip(arr, rows, strict=True):
            out[r] = img
            filled[r] = True
        frames.clear()
        rows.clear()


def _safe(key: str) -> str:
    return key.replace('/', '_')
