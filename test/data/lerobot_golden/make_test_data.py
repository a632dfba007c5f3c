"""Copy the LeRobot 0.6.1 golden files the parity tests need from a lerobot_golden folder.

Usage: python test/data/lerobot_golden/make_test_data.py SOURCE_DIR

LeRobot's README becomes LEROBOT_README.md (ours, README.md, states sizes and provenance).
Everything is copied byte for byte except reference_061.safetensors, whose camera images
(`batch.*` and `extra_resize.*` images, LeRobot's uint8 / 255 floats) are stored as the uint8
values: 4x smaller, and `value / 255` in float32 gives LeRobot's tensors back bit for bit (checked
here before writing). The LeRobot-written checkpoint's train_config.json is left out (the tests
never read it).
"""
from __future__ import annotations

from pathlib import Path
import shutil
import sys

from safetensors.torch import load_file, save_file
import torch

HERE = Path(__file__).resolve().parent
COPY = ('README.md', 'reference_061.json', 'reference_rtc_061.json',
        'reference_rtc_061.safetensors', 'reference_rtc6_061.json',
        'reference_rtc6_061.safetensors', 'tiny_vlm_061', 'lerobot_dataset_v30')
CHECKPOINT = 'smolvla_tiny_lerobot061'
UINT8_SUFFIX = '.uint8'  # key suffix of an image stored as its uint8 values


def uint8_images(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference with every image key stored as uint8 (key + '.uint8'), verified exact."""
    out = {}
    for key, value in tensors.items():
        if '.images.' in key:
            raw = torch.round(value * 255.0).to(torch.uint8)
            if not torch.equal(raw.to(torch.float32) / 255.0, value):
                raise SystemExit(f'{key} is not uint8 / 255; copy it unchanged instead')
            out[key + UINT8_SUFFIX] = raw
        else:
            out[key] = value.contiguous()
    return out


def main(source: Path) -> None:
    for name in COPY:
        src, dst = source / name, HERE / (f'LEROBOT_{name}' if name == 'README.md' else name)
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
    (HERE / CHECKPOINT).mkdir(exist_ok=True)
    for src in sorted((source / CHECKPOINT).iterdir()):
        if src.name != 'train_config.json':
            shutil.copyfile(src, HERE / CHECKPOINT / src.name)
    save_file(uint8_images(load_file(str(source / 'reference_061.safetensors'))),
              str(HERE / 'reference_061.safetensors'))
    for path in HERE.rglob('*'):  # the shared originals are read-only
        path.chmod(0o755 if path.is_dir() else 0o644)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
