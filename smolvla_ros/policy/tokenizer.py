"""The tokenizer that goes with a SmolVLA config, found without network access.

LeRobot uses the tokenizer of `vlm_model_name` (SmolVLM2's, vocabulary 49,280). We resolve it in
this order, never downloading anything:

1. a local directory (a checkpoint's `tokenizer/` folder, or a SmolVLM directory): AutoTokenizer;
2. a hub id that is already in the local Hugging Face cache (`local_files_only=True`);
3. the `tiny` preset's tokenizer: a byte-level BPE built in-process from a fixed vocabulary (the 256
   bytes plus SmolVLM's special tokens, no merges), so it is identical on every machine and needs no
   training.

A hub id that is not cached gives a TokenizerNotFoundError that says how to fetch it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# vlm_model_name values that select the built-in tiny tokenizer (the `tiny` preset's VLM).
# Names of the built-in byte-level tokenizer: the tiny test geometry and the small learned sim
# geometry (configuration_smolvla.SIM_SMALL_VLM_NAME) both use it.
TINY_TOKENIZER_NAMES = frozenset({'tiny', 'smolvla_ros/tiny', 'smolvla-ros/tiny',
                                  'smolvla_ros/sim_small'})

# SmolLM2 / SmolVLM2 specials (text ones first, then the image ones SmolVLM adds).
TINY_TEXT_SPECIALS = ('<|endoftext|>', '<|im_start|>', '<|im_end|>')
TINY_IMAGE_SPECIALS = ('<fake_token_around_image>', '<image>', '<global-img>')
TINY_PAD_TOKEN = '<|im_end|>'
TINY_VOCAB_SIZE = len(TINY_TEXT_SPECIALS) + 256 + len(TINY_IMAGE_SPECIALS)


class TokenizerNotFoundError(RuntimeError):
    """No tokenizer for the requested name could be found locally."""


def is_tiny_name(name: str | Path) -> bool:
    """True when `name` selects the built-in tiny tokenizer."""
    return str(name) in TINY_TOKENIZER_NAMES


def build_tiny_tokenizer() -> Any:
    """A deterministic byte-level BPE tokenizer (vocabulary TINY_VOCAB_SIZE), built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet(), key=_byte_order())
    vocab: dict[str, int] = {}
    for token in (*TINY_TEXT_SPECIALS, *byte_chars, *TINY_IMAGE_SPECIALS):
        vocab[token] = len(vocab)
    model = models.BPE(vocab=vocab, merges=[], unk_token=None)
    core = Tokenizer(model)
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token='<|im_start|>',
        eos_token='<|endoftext|>',
        pad_token=TINY_PAD_TOKEN,
        additional_special_tokens=list(TINY_IMAGE_SPECIALS),
        padding_side='right',
        model_max_length=1 << 16,
    )
    if len(tokenizer) != TINY_VOCAB_SIZE:
        raise RuntimeError(
            f'tiny tokenizer has {len(tokenizer)} tokens, expected {TINY_VOCAB_SIZE}')
    return tokenizer


def _byte_order() -> Any:
    """Sort key putting the byte-level alphabet in byte order 0..255 (stable ids)."""
    mapping = _bytes_to_unicode()
    inverse = {ch: b for b, ch in mapping.items()}
    return lambda ch: inverse[ch]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the ByteLevel alphabet)."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1))
                 + list(range(ord('\xae'), ord('\xff') + 1)))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer for a vlm_model_name / tokenizer_name, from local files only."""
    name = str(name_or_path)
    if is_tiny_name(name):
        return build_tiny_tokenizer()
    from transformers import AutoTokenizer

    path = Path(name).expanduser()
    if path.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TokenizerNotFoundError(
                f'{path} holds no loadable tokenizer (tokenizer.json / tokenizer_config.json): '
                f'{exc}') from exc
    if path.exists():
        raise TokenizerNotFoundError(f'{path} is a file; a tokenizer is a directory or a hub id')
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TokenizerNotFoundError(
            f'tokenizer {name!r} is neither a local directory nor in the local Hugging Face cache, '
            f'and smolvla_ros never downloads at run time. On a machine with network run '
            f'`huggingface-cli download {name}` (then copy ~/.cache/huggingface or set HF_HOME), '
            f'or '
            f'point tokenizer_name / vlm_model_name at a local directory.') from exc
