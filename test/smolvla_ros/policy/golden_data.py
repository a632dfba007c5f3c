"""Access to the LeRobot 0.6.1 golden data in test/data/lerobot_golden (README.md there).

The tensors were computed by the real LeRobot 0.6.1 from a checkpoint LeRobot wrote, so the golden
tests compare our SmolVLA with LeRobot itself rather than with our own reading of it.
"""
from __future__ import annotations

import json
from pathlib import Path
import shutil
from typing import Any

from safetensors.torch import load_file
import torch

GOLDEN = Path(__file__).resolve().parents[2] / 'data' / 'lerobot_golden'
CHECKPOINT = 'smolvla_tiny_lerobot061'
VLM = 'tiny_vlm_061'
PLACEHOLDER = '@FIXTURES@'  # LeRobot saved absolute VLM paths; the files hold this instead
UINT8_SUFFIX = '.uint8'  # images stored as their uint8 values (make_test_data.py)
ACTION_ATOL = 1e-4  # robot units; LeRobot's float32 noise on these actions is ~3e-5
NORMALIZED_ATOL = 1e-5  # normalized actions and intermediates


def checkpoint_copy(directory: Path, rtc_config: dict[str, Any] | None = None) -> Path:
    """A loadable copy of LeRobot's checkpoint under `directory`, VLM paths pointing at its copy.

    rtc_config (LeRobot's RTCConfig fields) is written into config.json, the way a LeRobot user
    sets `policy.config.rtc_config`.
    """
    shutil.copytree(GOLDEN / VLM, directory / VLM)
    shutil.copytree(GOLDEN / CHECKPOINT, directory / CHECKPOINT)
    for path in (directory / CHECKPOINT).glob('*.json'):
        path.write_text(path.read_text().replace(PLACEHOLDER, str(directory)))
    if rtc_config is not None:
        config_path = directory / CHECKPOINT / 'config.json'
        config = json.loads(config_path.read_text())
        config['rtc_config'] = rtc_config
        config_path.write_text(json.dumps(config, indent=2))
    return directory / CHECKPOINT


def load_reference(name: str) -> dict[str, torch.Tensor]:
    """The tensors of `name`.safetensors, images back as LeRobot's float32 (uint8 / 255)."""
    tensors = load_file(str(GOLDEN / f'{name}.safetensors'))
    out = {}
    for key, value in tensors.items():
        if key.endswith(UINT8_SUFFIX):
            out[key[:-len(UINT8_SUFFIX)]] = value.to(torch.float32) / 255.0
        else:
            out[key] = value
    return out


def reference_json(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f'{name}.json').read_text())


def observation(ref: dict[str, torch.Tensor], prefix: str = 'batch.') -> dict[str, Any]:
    """The policy batch LeRobot was given: its images and state under `prefix`, and the tasks."""
    batch: dict[str, Any] = {key[len(prefix):]: value for key, value in ref.items()
                             if key.startswith(prefix + 'observation.')}
    batch.setdefault('observation.state', ref['batch.observation.state'])
    batch['task'] = reference_json('reference_061')['tasks']
    return batch


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())
