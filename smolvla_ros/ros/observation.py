"""smolvla_msgs/Observation <-> ObservationData (images decoded to RGB).

Images travel either JPEG-compressed in ``images`` (the default: 3 cameras at 512x512 are ~2.4 MB
raw per request, ~0.1-0.2 MB as JPEG) or as raw rgb8 in ``raw_images``, never both.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
import signal

import numpy as np
from sensor_msgs.msg import CompressedImage
from smolvla_msgs.msg import Observation

from smolvla_ros.core.types import ObservationData
from smolvla_ros.ros.buffers import to_array, view
from smolvla_ros.ros.compressed import compressed_to_rgb, rgb_to_compressed
from smolvla_ros.ros.errors import ConversionError, ImageSizeError, LengthMismatchError
from smolvla_ros.ros.image import image_to_rgb, numpy_to_image
from smolvla_ros.ros.joint_state import joint_state_to_numpy, numpy_to_joint_state
from smolvla_ros.ros.time import ns_to_stamp, stamp_to_ns

IMAGE_FORMATS = ('jpeg', 'raw')


@dataclass(frozen=True)
class ImageEncoding:
    """How images go into an Observation: 'jpeg' (with quality 1..100) or 'raw' (rgb8)."""

    format: str = 'jpeg'
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.format not in IMAGE_FORMATS:
            raise ValueError(f'image format must be one of {IMAGE_FORMATS}, got {self.format!r}')
        q = self.jpeg_quality
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
            raise ValueError(f'jpeg_quality must be an int in [1, 100], got {q!r}')


def _block_shutdown_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def codec_pool(threads: int) -> ThreadPoolExecutor | None:
    """A thread pool for parallel JPEG encode/decode of the frames; None when ``threads`` <= 1.

    Its threads block SIGINT and SIGTERM so that those signals go to the main thread, where
    rclpy's shutdown handling expects them (hygiene: the occasional lost SIGTERM seen with the
    null server happened without any pool too; its periodic timer is what bounds shutdown).
    """
    if threads <= 1:
        return None
    return ThreadPoolExecutor(threads, 'codec', initializer=_block_shutdown_signals)


def observation_to_msg(
    obs: ObservationData, encoding: ImageEncoding | None = None,
    executor: Executor | None = None,
) -> Observation:
    """The message for an observation; images JPEG-encoded (default) or copied raw as rgb8.

    With an ``executor`` (see ``codec_pool``) the frames are JPEG-encoded in parallel.
    """
    encoding = encoding or ImageEncoding()
    msg = Observation()
    msg.header.stamp = ns_to_stamp(obs.stamp_ns)
    msg.request_id = obs.request_id
    msg.task = obs.task
    msg.state = numpy_to_joint_state(obs.joint_names, obs.state, stamp_ns=obs.stamp_ns)
    msg.camera_names = list(obs.camera_names)
    if encoding.format == 'jpeg':
        def encode(camera: str) -> CompressedImage:
            return rgb_to_compressed(obs.images[camera], quality=encoding.jpeg_quality,
                                     stamp_ns=obs.stamp_ns, frame_id=camera)

        if executor is not None and len(obs.camera_names) > 1:
            msg.images = list(executor.map(encode, obs.camera_names))
        else:
            msg.images = [encode(c) for c in obs.camera_names]
    else:
        msg.raw_images = [
            numpy_to_image(obs.images[c], 'rgb8', stamp_ns=obs.stamp_ns, frame_id=c)
            for c in obs.camera_names]
    msg.inference_delay_steps = obs.inference_delay_steps
    msg.leftover_steps = int(obs.leftover.shape[0])
    msg.leftover_positions = to_array(obs.leftover, np.float32)  # [n*J], row-major
    return msg


def msg_to_observation(msg: Observation, executor: Executor | None = None,
                       max_sizes: Mapping[str, tuple[int, int]] | None = None) -> ObservationData:
    """Decode an Observation: state by the names it carries, every image to RGB [H, W, 3].

    With an ``executor`` (a ThreadPoolExecutor), the images decode in parallel: OpenCV releases
    the GIL while decoding, so 3 JPEG frames take about one frame's time given the cores.

    ``max_sizes`` (camera -> (width, height), e.g. ``RobotContract.max_frame_size``) bounds every
    frame before it is decoded: a camera without an entry or a frame whose header is larger is
    refused (ImageSizeError) without decoding anything.

    Raises a ConversionError subclass for malformed messages (both or neither image list filled
    while cameras are named, counts that disagree, corrupt JPEG, unknown encodings) and
    core.types.InvalidObservationError for inconsistent content (non-finite state, ...).
    """
    state = joint_state_to_numpy(msg.state)
    if state.position.size != len(state.names):
        raise LengthMismatchError(
            f'observation state has {state.position.size} positions for {len(state.names)} '
            f'joints {list(state.names)}')
    cameras = list(msg.camera_names)
    images = _decode_images(msg, cameras, executor, max_sizes)
    leftover = view(msg.leftover_positions, np.float32)  # [n*J]
    steps, joints = int(msg.leftover_steps), len(state.names)
    if leftover.size != steps * joints:
        raise LengthMismatchError(
            f'leftover_positions has {leftover.size} values for leftover_steps {steps} x '
            f'{joints} joints = {steps * joints}')
    return ObservationData(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        request_id=int(msg.request_id),
        task=msg.task,
        joint_names=state.names,
        state=state.position,
        camera_names=tuple(cameras),
        images=images,
        inference_delay_steps=int(msg.inference_delay_steps),
        leftover=leftover.reshape(steps, joints),  # [n, J]
    )


def _decode_images(
    msg: Observation, cameras: list[str], executor: Executor | None,
    max_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, np.ndarray]:
    compressed, raw = list(msg.images), list(msg.raw_images)
    if compressed and raw:
        raise ConversionError(
            f'observation carries both images ({len(compressed)}) and raw_images ({len(raw)}); '
            f'exactly one list may be filled')
    frames = compressed or raw
    if len(frames) != len(cameras):
        which = 'images' if compressed else 'raw_images'
        raise LengthMismatchError(
            f'observation names {len(cameras)} cameras {cameras} but carries {len(frames)} '
            f'{which}')
    decoders = [compressed_to_rgb if compressed else image_to_rgb] * len(frames)
    if max_sizes is not None:
        decoders = [_bounded(camera, frame, max_sizes, compressed)
                    for camera, frame in zip(cameras, frames, strict=True)]
    if executor is not None and compressed and len(frames) > 1:
        pending = [executor.submit(decode, frame) for decode, frame in zip(decoders, frames,
                                                                           strict=True)]
        calls = [(future.result,) for future in pending]
    else:  # raw rgb8 frames are views: nothing worth a thread
        calls = [(decode, frame) for decode, frame in zip(decoders, frames, strict=True)]
    return {name: _named(name, *call) for name, call in zip(cameras, calls, strict=True)}


def _named(camera: str, fn, *args) -> np.ndarray:
    """``fn(*args)``, with the camera name prefixed to any conversion error."""
    try:
        return fn(*args)
    except ConversionError as exc:
        raise type(exc)(f'camera {camera!r}: {exc}') from exc


def _bounded(camera: str, frame, max_sizes: Mapping[str, tuple[int, int]], compressed: bool):
    """The decoder of one frame under its camera's bound (raw frames are checked here)."""
    if camera not in max_sizes:
        raise ImageSizeError(f'camera {camera!r} is not accepted here (cameras '
                             f'{sorted(max_sizes)}); its frame was not decoded')
    max_w, max_h = max_sizes[camera]
    if compressed:
        return partial(compressed_to_rgb, max_size=(max_w, max_h))
    if frame.width > max_w or frame.height > max_h:
        raise ImageSizeError(f'camera {camera!r}: raw image {frame.width}x{frame.height} is '
                             f'larger than the {max_w}x{max_h} allowed')
    return image_to_rgb
