"""SmolVLA input processing: images, state/action padding and task tokenization (torch only).

These are the steps LeRobot runs around the model (docs/lerobot_compat.md, "Inputs and
preprocessing"), written with torch ops so that no torchvision is needed:

* images: resize with padding to the configured size (aspect ratio kept, bilinear, zero padding on
  the LEFT and TOP only: SmolVLA's convention, pi0 pads centred), then [0, 1] -> [-1, 1];
* state / action: zero padding on the right to max_state_dim / max_action_dim;
* task: a trailing newline, then the tokenizer with right padding ('max_length' or 'longest') to
  tokenizer_max_length, truncation on.

Anything that does not fit (wrong rank, too many dims, values that are not a batch) raises a
ProcessingError naming what was wrong.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
import torch.nn.functional as F  # noqa: N812

from smolvla_ros.policy.errors import PolicyInputError


class ProcessingError(PolicyInputError):
    """An input that the SmolVLA processors cannot turn into model inputs."""


def resize_with_pad(images: Tensor, width: int, height: int, pad_value: float = 0.0) -> Tensor:
    """Fit [B,C,H,W] images into width x height, keeping the aspect ratio, padding left and top.

    The scale is ratio = max(W / width, H / height); the image becomes int(H / ratio) x
    int(W / ratio) by bilinear interpolation (align_corners=False) and is then padded with
    `pad_value` on the left and top up to the target size. A frame already at that size is
    returned as it is, and one that needs only padding is not interpolated: bilinear
    interpolation to the same size is the identity, so the result is the same (LeRobot's
    `resize_with_pad` interpolates anyway).
    """
    if images.ndim != 4:
        raise ProcessingError(f'images must be [B,C,H,W], got shape {tuple(images.shape)}')
    if width <= 0 or height <= 0:
        raise ProcessingError(f'target size must be positive, got {width}x{height}')
    cur_h, cur_w = images.shape[-2:]
    ratio = max(cur_w / width, cur_h / height)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    if new_h <= 0 or new_w <= 0:
        raise ProcessingError(
            f'image {cur_w}x{cur_h} collapses to {new_w}x{new_h} at {width}x{height}')
    if (new_h, new_w) == (cur_h, cur_w):
        resized = images  # already at the model's resolution (or only padding is missing)
    else:
        resized = F.interpolate(images, size=(new_h, new_w), mode='bilinear',
                                align_corners=False)  # [B,C,new_h,new_w]
    pad_w, pad_h = max(0, width - new_w), max(0, height - new_h)
    if pad_w == 0 and pad_h == 0:
        return resized
    # F.pad order for the last two dims: (left, right, top, bottom).
    return F.pad(resized, (pad_w, 0, pad_h, 0), value=pad_value)  # [B,C,height,width]


def to_model_range(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1] (x * 2 - 1): the range SigLIP expects."""
    return images * 2.0 - 1.0


def prepare_image(images: Tensor, width: int, height: int) -> Tensor:
    """One camera, float [B,3,H,W] (or [B,T,3,H,W]: last step) in [0,1] -> [B,3,h,w] in [-1,1]."""
    if images.ndim == 5:
        images = images[:, -1]  # [B,T,C,H,W] -> [B,C,H,W]: the latest observation step
    if not torch.is_floating_point(images):
        raise ProcessingError(f'images must be float in [0, 1], got dtype {images.dtype}')
    if images.ndim != 4 or images.shape[1] != 3:
        raise ProcessingError(f'images must be [B,3,H,W], got shape {tuple(images.shape)}')
    return to_model_range(resize_with_pad(images, width, height, pad_value=0.0))


def pad_vector(vector: Tensor, new_dim: int) -> Tensor:
    """Zero-pad the last dim of [..., D] to new_dim (D > new_dim is an error, not a no-op)."""
    current = vector.shape[-1]
    if current > new_dim:
        raise ProcessingError(f'vector has {current} dims, more than the model maximum {new_dim}')
    if current == new_dim:
        return vector
    return F.pad(vector, (0, new_dim - current))  # [..., new_dim]


def prepare_state(state: Tensor, max_state_dim: int) -> Tensor:
    """observation.state [B,S] (or [B,T,S]: last step) -> [B, max_state_dim] zero padded."""
    if state.ndim == 3:
        state = state[:, -1]  # [B,T,S] -> [B,S]
    if state.ndim != 2:
        raise ProcessingError(f'observation.state must be [B,S], got shape {tuple(state.shape)}')
    return pad_vector(state, max_state_dim)


def add_newline(tasks: Sequence[str]) -> list[str]:
    """Append '\\n' to every task that does not already end with one (SmolVLA's prompt format)."""
    return [t if t.endswith('\n') else f'{t}\n' for t in tasks]


def as_task_list(task: Any, batch_size: int) -> list[str]:
    """The batch's 'task' as a list of batch_size strings (a single string is broadcast)."""
    if isinstance(task, str):
        return [task] * batch_size
    if not isinstance(task, (list, tuple)) or not all(isinstance(t, str) for t in task):
        raise ProcessingError(
            f"'task' must be a string or a list of strings, got {type(task).__name__}")
    if len(task) != batch_size:
        raise ProcessingError(f"'task' has {len(task)} entries for a batch of {batch_size}")
    return list(task)


def tokenize_tasks(tokenizer: Any, tasks: Sequence[str], max_length: int,
                   padding: str = 'max_length') -> tuple[Tensor, Tensor]:
    """Tasks -> (tokens [B,L] long, attention mask [B,L] bool), newline added, right padded.

    `padding` is LeRobot's `pad_language_to`: 'max_length' gives L = max_length; 'longest' gives the
    longest prompt of the batch (at most max_length). Longer prompts are truncated.
    """
    if padding not in ('max_length', 'longest'):
        raise ProcessingError(f"padding must be 'max_length' or 'longest', got {padding!r}")
    if max_length <= 0:
        raise ProcessingError(f'max_length must be positive, got {max_length}')
    if tokenizer.pad_token_id is None:
        raise ProcessingError('the tokenizer has no pad token')
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = 'right'
    try:
        enc = tokenizer(add_newline(tasks), padding=padding, max_length=max_length,
                        truncation=True, return_tensors='pt')
    finally:
        tokenizer.padding_side = previous_side
    tokens = enc['input_ids'].to(torch.long)  # [B,L]
    mask = enc['attention_mask'].to(torch.bool)  # [B,L]
    return tokens, mask
