"""Synthetic but realistic observations for diagnostics and benchmarks (numpy + OpenCV only).

The scene is built so that JPEG sizes resemble real camera frames rather than flat test images:
a smooth two-axis colour gradient (walls/lighting), a textured "table" plane, a handful of filled
shapes with outlines (objects), thin lines (edges, cables) and mild Gaussian sensor noise
(sigma 3 grey levels). A flat image would compress to a few kB and flatter every figure.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smolvla_ros.core.types import ObservationData
from smolvla_ros.opencv import cv2

# SO-100/SO-101 joint names, in the order LeRobot's so_follower reads them.
SO101_JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll',
                'gripper')
DEFAULT_CAMERAS = ('front', 'wrist', 'side')


def synthetic_scene(height: int, width: int, seed: int = 0, noise_sigma: float = 3.0) -> np.ndarray:
    """An RGB uint8 [H, W, 3] scene: gradients, a table, shapes, lines and sensor noise."""
    if height < 8 or width < 8:
        raise ValueError(f'synthetic scene needs at least 8x8 pixels, got {width}x{height}')
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]  # [H, 1]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]  # [1, W]
    base = rng.uniform(60, 200, size=3).astype(np.float32)  # [3]
    tilt = rng.uniform(-50, 50, size=(2, 3)).astype(np.float32)  # [2, 3]
    img = base + y[..., None] * tilt[0] + x[..., None] * tilt[1]  # [H, W, 3]
    # Table: lower part of the frame, a darker plane with a fine wood-like stripe texture.
    top = int(height * rng.uniform(0.45, 0.6))
    stripes = 8.0 * np.sin(np.arange(width, dtype=np.float32) * rng.uniform(0.15, 0.4))  # [W]
    img[top:] = img[top:] * 0.6 + stripes[None, :, None] + 30.0
    img = np.clip(img, 0, 255).astype(np.uint8)
    scale = min(height, width)
    for _ in range(int(rng.integers(4, 8))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(top // 2, height))
        size = int(rng.integers(scale // 20, scale // 6 + 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (cx - size, cy - size), (cx + size, cy + size), colour, -1)
        else:
            cv2.circle(img, (cx, cy), size, colour, -1, lineType=cv2.LINE_AA)
        cv2.circle(img, (cx, cy), size, (20, 20, 20), 2, lineType=cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 5))):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(img, p0, p1, (40, 40, 40), 1, lineType=cv2.LINE_AA)
    if noise_sigma > 0:
        noise = rng.normal(0.0, noise_sigma, size=img.shape)  # [H, W, 3]
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


def synthetic_observation(
    request_id: int = 0,
    *,
    stamp_ns: int = 0,
    num_cameras: int = 3,
    image_size: int = 512,
    joint_names: Sequence[str] = SO101_JOINTS,
    task: str = 'pick the red cube and place it in the bowl',
    seed: int = 0,
) -> ObservationData:
    """An observation of ``num_cameras`` square synthetic frames and a plausible joint state."""
    if num_cameras < 0:
        raise ValueError(f'num_cameras must be >= 0, got {num_cameras}')
    cameras = tuple(DEFAULT_CAMERAS[i] if i < len(DEFAULT_CAMERAS) else f'camera{i}'
                    for i in range(num_cameras))
    images = {c: synthetic_scene(image_size, image_size, seed=seed * 1000 + i)
              for i, c in enumerate(cameras)}
    rng = np.random.default_rng(seed)
    state = rng.uniform(-1.0, 1.0, size=len(joint_names))  # [J], rad
    return ObservationData(
        stamp_ns=stamp_ns, request_id=request_id, task=task, joint_names=tuple(joint_names),
        state=state, camera_names=cameras, images=images)
