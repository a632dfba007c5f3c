"""Training batches from LeRobot datasets: observation at frame t, actions t..t+chunk-1.

LeRobot's SmolVLA training sample (`delta_timestamps` with `action_delta_indices` =
range(chunk_size)): the frame's images, state and task, and the next `chunk_size` actions of the
same episode; indices past the episode end are clamped to its last frame and flagged in
`action_is_pad`. Several datasets concatenate; episodes are numbered across them in order
(dataset 0's episodes first). Dataset keys map onto the policy's through `rename_map`.

Batches are assembled vectorised (one fancy index per feature) instead of item by item, because on
2 cores per-item Python and collation cost more than the step of a small model. Sample order is a
pure function of (seed, epoch), so a resumed run draws exactly the batches the killed run would
have drawn, and with several processes every rank takes its slice of the same global batch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from smolvla_training.convert import stats as st
from smolvla_training.dataset.reader import DatasetFormatError, LeRobotDatasetReader
from smolvla_training.train.frame_cache import FrameCache

STATE_KEY = 'observation.state'
ACTION_KEY = 'action'


class DataMismatchError(ValueError):
    """The datasets cannot feed the policy (names the keys on both sides)."""


@dataclass(frozen=True)
class _Part:
    """One dataset inside the concatenation."""

    reader: LeRobotDatasetReader
    first_episode: int  # global number of its first episode
    row_offset: int  # global row of its first row
    cache: FrameCache | None


def open_datasets(roots: Sequence[str]) -> list[LeRobotDatasetReader]:
    """Readers for the dataset directories, with a clear error for anything not v3.0/v2.1."""
    readers = []
    for root in roots:
        try:
            readers.append(LeRobotDatasetReader(root, decode_images=False))
        except DatasetFormatError as exc:
            raise DatasetFormatError(f'{exc} (smolvla-train reads LeRobot v3.0 datasets; '
                                     'convert v2.1 with LeRobot\'s converter or read it as is)'
                                     ) from None
        except FileNotFoundError as exc:
            raise DatasetFormatError(f'{root}: not a LeRobot dataset ({exc})') from None
    return readers


def dataset_features(readers: Sequence[LeRobotDatasetReader],
                     rename_map: Mapping[str, str]) -> dict[str, dict]:
    """The policy-side features (renamed) that every dataset has, checked to agree."""
    first: dict[str, dict] | None = None
    for reader in readers:
        feats = {rename_map.get(k, k): f for k, f in reader.features.items()
                 if k in reader.video_keys or k in (STATE_KEY, ACTION_KEY)}
        for key in (STATE_KEY, ACTION_KEY):
            if key not in feats:
                raise DataMismatchError(f'{reader.root}: the dataset has no {key!r} feature '
                                        f'(it has {sorted(reader.features)})')
        if not any(k in reader.video_keys for k in reader.features):
            raise DataMismatchError(f'{reader.root}: the dataset has no video (camera) features')
        if first is None:
            first = feats
        elif set(feats) != set(first) or any(
                list(feats[k]['shape']) != list(first[k]['shape'])
                for k in (STATE_KEY, ACTION_KEY)):
            raise DataMismatchError(f'{reader.root}: features {sorted(feats)} differ from the '
                                    f'first dataset\'s {sorted(first)}')
    assert first is not None
    return first


def combined_stats(readers: Sequence[LeRobotDatasetReader], keys: Iterable[str],
                   rename_map: Mapping[str, str]) -> dict[str, dict[str, np.ndarray]]:
    """meta/stats.json of each dataset, renamed, count-weighted across datasets."""
    inverse = {v: k for k, v in rename_map.items()}
    out = {}
    for key in keys:
        src = inverse.get(key, key)
        per = [r.stats[src] for r in readers if src in r.stats]
        if len(per) != len(readers):
            missing = [str(r.root) for r in readers if src not in r.stats]
            raise DataMismatchError(f'meta/stats.json of {missing} has no stats for {src!r}')
        per = [{n: np.asarray(v, dtype=np.float64) for n, v in s.items()} for s in per]
        if len(per) == 1:
            out[key] = per[0]
        else:
            out[key] = st.aggregate(per)
    return out


class TrainingData:
    """Batches of (images, state, task, action chunk, action_is_pad) over given episodes."""

    def __init__(self, readers: Sequence[LeRobotDatasetReader], *, image_keys: Sequence[str],
                 chunk_size: int, image_size: tuple[int, int] | None,
                 rename_map: Mapping[str, str] | None = None,
                 episodes: Iterable[int] | None = None, use_cache: bool = True,
                 cache_dir: str | None = None, log: Callable[[str], None] = print) -> None:
        self.rename_map = dict(rename_map or {})
        self.image_keys = tuple(image_keys)  # policy keys, prefix order
        self.chunk_size = chunk_size
        self.image_size = image_size
        inverse = {v: k for k, v in self.rename_map.items()}
        self._source_keys = {k: inverse.get(k, k) for k in self.image_keys}
        parts, first_ep, row0 = [], 0, 0
        for reader in readers:
            missing = [k for k, src in self._source_keys.items() if src not in reader.video_keys]
            if missing:
                raise DataMismatchError(
                    f'{reader.root}: no camera for policy image features {missing} (the dataset '
                    f'has {list(reader.video_keys)}; map them with --rename-map DATASET_KEY='
                    'POLICY_KEY)')
            cache = FrameCache(reader, image_size, cache_dir, log) if use_cache else None
            parts.append(_Part(reader, first_ep, row0, cache))
            first_ep += len(reader.episodes)
            row0 += len(reader)
        self.parts = parts
        self.num_episodes = first_ep
        self._state = np.concatenate([p.reader.column(STATE_KEY) for p in parts])  # [N, S]
        self._action = np.concatenate([p.reader.column(ACTION_KEY) for p in parts])  # [N, A]
        ep_of_row, last_of_row, tasks = [], [], []
        for p in parts:
            local = p.reader.column('episode_index')
            order = {e.index: i for i, e in enumerate(p.reader.episodes)}
            ep_of_row.append(np.array([p.first_episode + order[int(e)] for e in local]))
            last = {e.index: p.row_offset + e.from_index + e.length - 1 for e in p.reader.episodes}
            last_of_row.append(np.array([last[int(e)] for e in local]))
            tasks.extend(p.reader.tasks[int(t)] for t in p.reader.column('task_index'))
        self._episode = np.concatenate(ep_of_row)  # [N] global episode number
        self._last = np.concatenate(last_of_row)  # [N] global row of the episode's last frame
        self._tasks = tasks
        wanted = set(range(self.num_episodes)) if episodes is None else set(episodes)
        bad = sorted(e for e in wanted if not 0 <= e < self.num_episodes)
        if bad:
            raise DataMismatchError(f'episodes {bad} do not exist (the datasets have '
                                    f'{self.num_episodes} episodes, 0..{self.num_episodes - 1})')
        self.rows = np.flatnonzero(np.isin(self._episode, sorted(wanted)))  # [M] sample rows
        if len(self.rows) == 0:
            raise DataMismatchError('no frames to train on (empty episode selection)')

    def __len__(self) -> int:
        return len(self.rows)

    # -- sampling ------------------------------------------------------------------------------
    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """The sample order of one epoch: a permutation of self.rows, fixed by (seed, epoch)."""
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        return self.rows[torch.randperm(len(self.rows), generator=gen).numpy()]

    def rows_for(self, seed: int, start: int, count: int) -> np.ndarray:
        """`count` sample rows from position `start` of the endless epoch sequence."""
        n = len(self.rows)
        out = []
        while count > 0:
            epoch, offset = divmod(start, n)
            take = min(count, n - offset)
            out.append(self.epoch_order(seed, epoch)[offset:offset + take])
            start += take
            count -= take
        return np.concatenate(out)

    # -- assembly ------------------------------------------------------------------------------
    def batch(self, rows: np.ndarray) -> dict[str, object]:
        """A training batch for global dataset rows [B]: tensors plus the task list."""
        rows = np.asarray(rows, dtype=np.int64)
        want = rows[:, None] + np.arange(self.chunk_size)[None, :]  # [B, T]
        last = self._last[rows][:, None]  # [B, 1]
        batch: dict[str, object] = {
            STATE_KEY: torch.from_numpy(self._state[rows]),  # [B, S]
            ACTION_KEY: torch.from_numpy(self._action[np.minimum(want, last)]),  # [B, T, A]
            'action_is_pad': torch.from_numpy(want > last),  # [B, T]
            'task': [self._tasks[r] for r in rows],
        }
        for key in self.image_keys:
            batch[key] = self._images(key, rows)  # [B, 3, h, w] float in [0, 1]
        return batch

    def valid_elements(self, rows: np.ndarray) -> int:
        """Valid (step, action dim) elements of the chunks of `rows`: LeRobot's loss denominator."""
        want = rows[:, None] + np.arange(self.chunk_size)[None, :]  # [B, T]
        return int((want <= self._last[rows][:, None]).sum()) * self._action.shape[1]

    def describe(self, rows: np.ndarray) -> str:
        """'episode e frame f' of each row, for error messages."""
        return ', '.join(f'episode {self._episode[r]} row {r}' for r in rows[:8])

    def _locate(self, rows: np.ndarray) -> list[tuple[_Part, np.ndarray, np.ndarray]]:
        out = []
        for part in self.parts:
            sel = np.flatnonzero((rows >= part.row_offset)
                                 & (rows < part.row_offset + len(part.reader)))
            if len(sel):
                out.append((part, sel, rows[sel] - part.row_offset))
        return out

    def _images(self, key: str, rows: np.ndarray) -> torch.Tensor:
        src = self._source_keys[key]
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        for part, sel, local in self._locate(rows):
            if part.cache is not None:
                pieces.append((sel, part.cache.get(src, local)))  # uint8 [b, 3, h, w]
            else:
                frames = [part.reader.frame(src, int(r)).transpose(2, 0, 1)  # [3, H, W]
                          for r in local]
                pieces.append((sel, np.stack(frames)))
        first = pieces[0][1]
        out = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
        for sel, arr in pieces:
            out[sel] = arr
        tensor = torch.from_numpy(out)
        return tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor


def augment_images(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Photometric jitter and a small shift, per sample, on [B, 3, H, W] in [0, 1].

    Brightness and contrast x U(0.8, 1.2), saturation x U(0.5, 1.5) and a shift of up to 4 % of
    the size (edge-replicated), drawn from `gen` so a resumed run augments identically. LeRobot's
    `ImageTransforms` has more kinds (hue, sharpness, affine); this is the subset that helps a
    sim-trained policy look at the cube rather than at fixed pixels.
    """
    b = images.shape[0]
    u = torch.rand(b, 3, generator=gen)  # [B, 3]
    bright = (0.8 + 0.4 * u[:, 0]).view(b, 1, 1, 1)
    contrast = (0.8 + 0.4 * u[:, 1]).view(b, 1, 1, 1)
    sat = (0.5 + 1.0 * u[:, 2]).view(b, 1, 1, 1)
    x = images * bright
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    gray = x.mean(dim=1, keepdim=True)  # [B, 1, H, W]
    x = (x - gray) * sat + gray
    h, w = images.shape[-2:]
    max_shift = max(1, int(0.04 * min(h, w)))
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=gen)
    pad = torch.nn.functional.pad(x, (max_shift,) * 4, mode='replicate')
    out = torch.empty_like(x)
    for i in range(b):
        dy, dx = int(shifts[i, 0]) + max_shift, int(shifts[i, 1]) + max_shift
        out[i] = pad[i, :, dy:dy + h, dx:dx + w]
    return out.clamp(0.0, 1.0)
