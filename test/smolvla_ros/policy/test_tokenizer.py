"""Tokenizer resolution: built-in tiny BPE, local directories, offline hub ids only."""
from __future__ import annotations

import pytest

pytest.importorskip('transformers')

from smolvla_ros.policy.tokenizer import (  # noqa: E402
    TINY_VOCAB_SIZE,
    TokenizerNotFoundError,
    build_tiny_tokenizer,
    is_tiny_name,
    load_tokenizer,
)


def test_tiny_tokenizer_is_deterministic_byte_level():
    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    text = 'Pick up the red cube, é ü 漢\n'
    ids = a(text)['input_ids']
    assert ids == b(text)['input_ids']
    assert len(a) == TINY_VOCAB_SIZE
    assert max(ids) < TINY_VOCAB_SIZE
    assert a.decode(ids) == text  # byte-level: every string round-trips
    assert a.pad_token == '<|im_end|>'
    # Bytes are in byte order after the 3 text specials: 'A' (65) -> 68.
    assert a('A')['input_ids'] == [68]
    assert a.convert_tokens_to_ids('<global-img>') == TINY_VOCAB_SIZE - 1


def test_tiny_names_and_local_directory_round_trip(tmp_path):
    assert is_tiny_name('tiny') and not is_tiny_name('HuggingFaceTB/SmolVLM2-500M-Video-Instruct')
    tok = load_tokenizer('tiny')
    tok.save_pretrained(str(tmp_path / 'tokenizer'))
    again = load_tokenizer(tmp_path / 'tokenizer')
    assert again('move left\n')['input_ids'] == tok('move left\n')['input_ids']
    assert again.pad_token_id == tok.pad_token_id


def test_missing_tokenizers_give_actionable_errors(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'empty_cache'))
    with pytest.raises(TokenizerNotFoundError, match='huggingface-cli download'):
        load_tokenizer('someone/not-cached-model')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(TokenizerNotFoundError, match='no loadable tokenizer'):
        load_tokenizer(tmp_path / 'empty')
    (tmp_path / 'file.txt').write_text('x')
    with pytest.raises(TokenizerNotFoundError, match='is a file'):
        load_tokenizer(tmp_path / 'file.txt')
