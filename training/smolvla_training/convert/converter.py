"""rosbag2 bags -> one LeRobot v3.0 dataset directory, atomically.

Pipeline per bag: pass 1 reads stamps and joints (``bag_source.read_bag``), ``episodes`` resamples
them onto the 1/fps grid with the contract's as-of alignment, joints go to dataset units through
``DatasetUnits`` (the one rad <-> dataset-unit conversion), and pass 2 decodes only the chosen
camera messages straight into the per-camera mp4 writers. Everything is written into a hidden
temporary directory beside the output that is renamed into place at the very end; any error
removes it, so a failed run leaves no partial dataset.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import logging
import math
import os
from pathlib import Path
import shutil

import numpy as np

from smolvla_ros.core.robot.contract import CameraSpec, RobotContract
from smolvla_ros.core.robot.dataset_units import DatasetUnits
from smolvla_training import lerobot_format as fmt
from smolvla_training.convert import stats as st
from smolvla_training.convert.bag_source import (
    BagStreams,
    iter_camera_frames,
    make_typestore,
    read_bag,
)
from smolvla_training.convert.episodes import ACTION, STATE, EpisodePlan, plan_episodes
from smolvla_training.convert.errors import ConvertError, NoFramesError, OutputExistsError
from smolvla_training.convert.lerobot_writer import (
    EpisodeRecord,
    build_features,
    write_info,
    write_json,
    write_tables,
)
from smolvla_training.convert.partial import make_partial_dir
from smolvla_training.convert.progress import progress_bar
from smolvla_training.convert.video import VCODECS, VideoWriter

logger = logging.getLogger(__name__)
CONVERTER_VERSION = 'smolvla_training 0.1.0'


@dataclass(frozen=True)
class ConvertConfig:
    """Options of one conversion (CLI flags map 1:1)."""

    fps: float | None = None  # None: the contract's fps
    vcodec: str = 'libsvtav1'
    task: str | None = None  # overrides the bag's task topic
    action_max_age_s: float | None = None  # None: the state stream's max age
    min_episode_frames: int = 1
    namespace: str = ''  # prefix of the contract's relative topics in the bag
    typestore: str = 'kilted'
    msg_dirs: tuple[Path, ...] = ()
    calibration: Path | None = None  # overrides the contract's calibration_file
    progress: bool = True

    def __post_init__(self) -> None:
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f'fps must be a finite number > 0, got {self.fps!r}')
        if self.vcodec not in VCODECS:
            raise ValueError(f'vcodec must be one of {VCODECS}, got {self.vcodec!r}')
        if self.action_max_age_s is not None and not self.action_max_age_s > 0:
            raise ValueError(f'action_max_age_s must be > 0, got {self.action_max_age_s!r}')
        if isinstance(self.min_episode_frames, bool) or not isinstance(
                self.min_episode_frames, int) or self.min_episode_frames < 1:
            raise ValueError(f'min_episode_frames must be an int >= 1, '
                             f'got {self.min_episode_frames!r}')


@dataclass
class ConvertResult:
    """What was written: the dataset root, counts and the per-episode sync report."""

    root: Path
    episodes: int
    frames: int
    sync_report: list[dict] = field(default_factory=list)


def plan_bag(bag: Path, contract: RobotContract, config: ConvertConfig,
             typestore=None) -> tuple[BagStreams, list[EpisodePlan], list[dict]]:
    """Pass 1 and alignment of one bag (no output): what the converter would write."""
    ts = typestore or make_typestore(config.typestore, config.msg_dirs)
    streams = read_bag(bag, contract, ts, config.namespace)
    fps = config.fps or contract.fps
    action_age = (config.action_max_age_s if config.action_max_age_s is not None
                  else contract.state.max_age_s)
    plans, reports = plan_episodes(streams, contract, fps, action_age,
                                   config.min_episode_frames, config.task)
    return streams, plans, reports


def _check_task(plan: EpisodePlan) -> None:
    if not plan.task:
        raise ConvertError(f'{plan.bag}: no task for the episode at {int(plan.grid[0])} ns: the '
                           'bag has no task message and the contract default is empty; pass '
                           '--task "..."')


def _write_videos(tmp: Path, bag: Path, contract: RobotContract, config: ConvertConfig,
                  plans: list[EpisodePlan], records: list[EpisodeRecord],
                  writers: dict[str, VideoWriter], file_numbers: dict[str, int], ts,
                  fps: float) -> None:
    """Pass 2: each camera's chosen frames into its mp4, camera after camera.

    Sequential on purpose: libsvtav1 and libx264 already use every core (a thread per camera
    measured no faster on 2 cores).
    """
    for cam in contract.cameras.values():
        _write_camera(tmp, bag, contract, cam, config, plans, records, writers, file_numbers,
                      ts, fps)


def _write_camera(tmp: Path, bag: Path, contract: RobotContract, cam: CameraSpec,
                  config: ConvertConfig, plans: list[EpisodePlan], records: list[EpisodeRecord],
                  writers: dict[str, VideoWriter], file_numbers: dict[str, int], ts,
                  fps: float) -> None:
    key = cam.feature
    indices = np.concatenate([p.indices[cam.name] for p in plans])  # [sum N]
    frames = iter_camera_frames(bag, contract, cam.name, indices, ts, config.namespace)
    bar = progress_bar(int(indices.size), f'{bag.name} {cam.name}', config.progress)
    try:
        for plan, rec in zip(plans, records, strict=True):
            writer = writers.get(key)
            if writer is not None and writer.size_mb() >= fmt.VIDEO_FILES_SIZE_IN_MB:
                writer.close()
                file_numbers[key] += 1
                writer = None
            if writer is None:
                chunk, file = fmt.chunk_and_file(file_numbers[key])
                path = tmp / fmt.VIDEO_PATH.format(video_key=key, chunk_index=chunk,
                                                   file_index=file)
                writer = writers[key] = VideoWriter(path, cam.width, cam.height, fps,
                                                    config.vcodec)
            start = writer.frames
            wanted = set(st.sample_indices(plan.length).tolist())
            sampled = []
            for k in range(plan.length):
                rgb = next(frames)
                writer.write(rgb)
                if k in wanted:  # keep only the stride-downsampled copy stats need (~160 px):
                    sampled.append(np.ascontiguousarray(st.downsample(rgb)))  # not 0.9 MB each
                bar.update(1)
            chunk, file = fmt.chunk_and_file(file_numbers[key])
            rec.videos[key] = {'chunk_index': chunk, 'file_index': file,
                               'from_timestamp': start / fps,
                               'to_timestamp': writer.frames / fps}
            rec.image_stats[key] = st.image_stats(sampled)
    finally:
        frames.close()
        bar.close()


def convert(bags: Sequence[str | os.PathLike[str]], contract: RobotContract,
            out: str | os.PathLike[str], config: ConvertConfig | None = None) -> ConvertResult:
    """Convert ``bags`` (in the given order) into a new dataset directory ``out``."""
    config = config or ConvertConfig()
    out = Path(out)
    if not bags:
        raise ConvertError('no bags given')
    if out.exists():
        raise OutputExistsError(f'{out} exists; the converter never overwrites a dataset '
                                '(remove it or choose another --out)')
    fps = float(config.fps or contract.fps)
    units = DatasetUnits.from_contract(contract, config.calibration)
    ts = make_typestore(config.typestore, config.msg_dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_partial_dir(out)
    writers: dict[str, VideoWriter] = {}
    try:
        file_numbers = {cam.feature: 0 for cam in contract.cameras.values()}
        records: list[EpisodeRecord] = []
        reports: list[dict] = []
        for bag in map(Path, bags):
            streams, plans, bag_reports = plan_bag(bag, contract, config, ts)
            reports.extend(bag_reports)
            bag_records = []
            for plan in plans:
                _check_task(plan)
                state = units.to_dataset(streams.state.values[plan.indices[STATE]])  # [N, J]
                action = units.to_dataset(streams.action.values[plan.indices[ACTION]])  # [N, J]
                rec = EpisodeRecord(len(records) + len(bag_records), plan.task,
                                    state.astype(np.float32), action.astype(np.float32))
                plan.report.setdefault('episode_indices', []).append(rec.index)
                bag_records.append(rec)
            if plans:
                _write_videos(tmp, bag, contract, config, plans, bag_records, writers,
                              file_numbers, ts, fps)
            records.extend(bag_records)
            logger.info('%s: %d episode(s), %d frames', bag,
                        len(plans), sum(p.length for p in plans))
        if not records:
            raise NoFramesError(
                f'no valid frames in {len(bags)} bag(s): at no grid point were all streams '
                'fresh (see the sync report below)\n' + _summary(reports))
        for w in writers.values():
            w.close()
        codec = next(iter(writers.values())).codec_name if writers else config.vcodec
        features = build_features(contract, fps, codec)
        stats = write_tables(tmp, contract, records, fps, features)
        tasks = {r.task for r in records}
        total = sum(r.length for r in records)
        write_info(tmp, contract, fps, features, len(records), total, len(tasks))
        write_json(tmp, fmt.STATS_PATH, st.to_json(stats))
        write_json(tmp, fmt.SYNC_REPORT_PATH, {'converter': CONVERTER_VERSION, 'fps': fps,
                                               'episodes': reports})
        if out.exists():
            raise OutputExistsError(f'{out} appeared while converting; not overwriting it')
        os.rename(tmp, out)
        return ConvertResult(out, len(records), total, reports)
    except BaseException:
        for w in writers.values():
            w.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _summary(reports: list[dict]) -> str:
    lines = []
    for r in reports:
        bad = {n: s['unusable_grid_points'] for n, s in r['streams'].items()
               if s['unusable_grid_points']}
        lines.append(f'  {r["bag"]}: {r["grid_points"]} grid points, {r["frames_kept"]} kept; '
                     f'unusable per stream {bad}')
    return '\n'.join(lines)


def summarize(reports: list[dict]) -> str:
    """Human-readable per-episode sync report (the CLI prints it)."""
    lines = []
    for r in reports:
        lines.append(f'{r["bag"]} span {(r["span_ns"][1] - r["span_ns"][0]) / 1e9:.2f} s: '
                     f'{r["frames_kept"]}/{r["grid_points"]} frames kept in '
                     f'{len(r["pieces"])} episode(s), task {r["task"]!r}')
        for name, s in r['streams'].items():
            lines.append(f'    {name:>10}: {s["messages"]} msgs, {s["rate_hz"]} Hz, max gap '
                         f'{s["max_gap_s"]} s, unusable {s["unusable_grid_points"]}, age p50/max '
                         f'{s["age_at_frames_p50_s"]}/{s["age_at_frames_max_s"]} s')
        lines.extend(f'    note: {n}' for n in r['notes'])
    return '\n'.join(lines)
