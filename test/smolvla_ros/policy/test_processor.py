"""Image resize-with-pad, range mapping, vector padding and task tokenization.

docs/lerobot_compat.md, "Inputs and preprocessing".
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy.processor_smolvla import (  # noqa: E402
    ProcessingError,
    add_newline,
    as_task_list,
    pad_vector,
    prepare_image,
    prepare_state,
    resize_with_pad,
    to_model_range,
    tokenize_tasks,
)
from smolvla_ros.policy.tokenizer import build_tiny_tokenizer  # noqa: E402


def test_wide_image_is_padded_on_top_only_and_keeps_aspect():
    img = torch.ones(2, 3, 240, 320)  # H=240, W=320 -> 48x64 inside 64x64
    out = resize_with_pad(img, width=64, height=64)
    assert out.shape == (2, 3, 64, 64)
    assert torch.all(out[:, :, :16, :] == 0)  # 64 - 48 = 16 padded rows at the top
    assert torch.all(out[:, :, 16:, :] == 1)  # content at the bottom, full width, no side padding


def test_tall_image_is_padded_on_the_left_only():
    img = torch.ones(1, 3, 100, 50)  # ratio 100/40 -> 40x20
    out = resize_with_pad(img, width=40, height=40, pad_value=-3.0)
    assert torch.all(out[..., :20] == -3.0) and torch.all(out[..., 20:] == 1.0)


def test_resize_matches_bilinear_of_the_content():
    img = torch.rand(1, 3, 30, 60)
    out = resize_with_pad(img, width=20, height=20)  # ratio 3 -> 10x20, 10 rows of top padding
    ref = torch.nn.functional.interpolate(img, size=(10, 20), mode='bilinear', align_corners=False)
    torch.testing.assert_close(out[:, :, 10:, :], ref)
    # Non-integer ratio: int() truncation of the resized size, as in LeRobot.
    out2 = resize_with_pad(torch.rand(1, 3, 480, 640), width=512, height=512)
    assert out2.shape[-2:] == (512, 512)
    assert torch.all(out2[:, :, :128] == 0) and not torch.all(out2[:, :, 128] == 0)


def test_same_size_image_is_unchanged():
    img = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(resize_with_pad(img, 16, 16), img)


def test_prepare_image_maps_to_minus_one_one_and_padding_becomes_minus_one():
    img = torch.full((1, 3, 8, 16), 0.75)
    out = prepare_image(img, width=16, height=16)
    assert torch.all(out[:, :, :8] == -1.0)  # padding 0 -> -1
    torch.testing.assert_close(out[:, :, 8:], torch.full((1, 3, 8, 16), 0.5))
    torch.testing.assert_close(to_model_range(torch.tensor([0.0, 0.5, 1.0])),
                               torch.tensor([-1.0, 0.0, 1.0]))
    # [B,T,C,H,W]: the last time step is used.
    seq = torch.stack([torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)], dim=1)
    assert torch.all(prepare_image(seq, 16, 16) == 1.0)


def test_image_errors():
    with pytest.raises(ProcessingError, match=r'\[B,C,H,W\]'):
        resize_with_pad(torch.zeros(3, 8, 8), 4, 4)
    with pytest.raises(ProcessingError, match='float'):
        prepare_image(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 4, 4)
    with pytest.raises(ProcessingError, match=r'\[B,3,H,W\]'):
        prepare_image(torch.zeros(1, 1, 8, 8), 4, 4)


def test_pad_vector_and_state():
    v = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(pad_vector(v, 4), torch.tensor([[1.0, 2.0, 0.0, 0.0]]))
    assert pad_vector(torch.zeros(2, 5, 6), 32).shape == (2, 5, 32)
    with pytest.raises(ProcessingError, match='more than the model maximum 4'):
        pad_vector(torch.zeros(1, 5), 4)
    state = torch.arange(12.0).reshape(1, 2, 6)  # [B,T,S] -> last step
    torch.testing.assert_close(prepare_state(state, 8)[0, :6], torch.arange(6.0, 12.0))
    with pytest.raises(ProcessingError, match=r'\[B,S\]'):
        prepare_state(torch.zeros(6), 8)


def test_newline_and_task_list():
    assert add_newline(['pick', 'place\n']) == ['pick\n', 'place\n']
    assert as_task_list('pick', 2) == ['pick', 'pick']
    with pytest.raises(ProcessingError, match='2 entries for a batch of 3'):
        as_task_list(['a', 'b'], 3)
    with pytest.raises(ProcessingError, match='list of strings'):
        as_task_list([1], 1)


def test_tokenization_newline_right_padding_and_truncation():
    tok = build_tiny_tokenizer()
    tokens, mask = tokenize_tasks(tok, ['ab', 'abcd\n'], max_length=8, padding='max_length')
    assert tokens.shape == mask.shape == (2, 8) and tokens.dtype == torch.long
    assert mask.dtype == torch.bool
    newline = tok.convert_tokens_to_ids(tok.tokenize('\n'))[0]
    a, b = tok.convert_tokens_to_ids(tok.tokenize('ab'))
    assert tokens[0, :3].tolist() == [a, b, newline]  # newline appended
    assert mask[0].tolist() == [True] * 3 + [False] * 5  # right padding
    assert torch.all(tokens[0, 3:] == tok.pad_token_id)
    assert mask[1].sum() == 5 and tokens[1, 4] == newline  # no second newline
    # 'longest' pads to the longest prompt; long prompts are truncated to max_length.
    tokens, mask = tokenize_tasks(tok, ['ab', 'abc'], max_length=8, padding='longest')
    assert tokens.shape == (2, 4)
    tokens, mask = tokenize_tasks(tok, ['x' * 50], max_length=8, padding='longest')
    assert tokens.shape == (1, 8) and mask.all()
    assert tok.padding_side == 'right'
    with pytest.raises(ProcessingError, match='padding'):
        tokenize_tasks(tok, ['a'], max_length=8, padding='left')
