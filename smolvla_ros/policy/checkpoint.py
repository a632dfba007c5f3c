"""Read and write LeRobot SmolVLA policy directories (safetensors + JSON only, never torch.load).

Two on-disk layouts exist (docs/lerobot_compat.md, "Checkpoint files and keys"):

* >= 0.4 (processor pipelines): config.json, model.safetensors (weights only, keys `model.*`),
  policy_preprocessor.json + policy_preprocessor_step_5_normalizer_processor.safetensors and
  policy_postprocessor.json + policy_postprocessor_step_0_unnormalizer_processor.safetensors, the
  stats files holding flat '<feature>.<stat>' tensors. Newer LeRobot also saves a tokenizer/ folder.
* pre-0.4 (<= v0.3.x): config.json and model.safetensors only; the normalization stats are buffers
  inside the model file: `normalize_inputs.buffer_observation_state.mean`,
  `normalize_targets.buffer_action.std`, `unnormalize_outputs.buffer_action.mean`, ...

`read_checkpoint` returns the same CheckpointContents for both, so the policy does not care which
layout it got. Every file is checked before use; a truncated or corrupt file raises
CorruptCheckpointError naming the file and what is wrong with it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import json
import logging
import math
import os
from pathlib import Path
import shutil
import struct
import tempfile
from typing import Any
import uuid

import torch
from torch import Tensor

from smolvla_ros.policy.normalize import DEFAULT_EPS, split_flat_stats, to_stat_tensor

logger = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
MODEL_FILE = 'model.safetensors'
PREPROCESSOR_NAME = 'policy_preprocessor'
POSTPROCESSOR_NAME = 'policy_postprocessor'
NORMALIZER_STEP = 'normalizer_processor'
UNNORMALIZER_STEP = 'unnormalizer_processor'
TOKENIZER_STEP = 'tokenizer_processor'
TOKENIZER_DIR = 'tokenizer'
PREPROCESSOR_STATS_FILE = f'{PREPROCESSOR_NAME}_step_5_{NORMALIZER_STEP}.safetensors'
POSTPROCESSOR_STATS_FILE = f'{POSTPROCESSOR_NAME}_step_0_{UNNORMALIZER_STEP}.safetensors'

# pre-0.4 in-model normalization modules and the stats set they belong to.
_LEGACY_MODULES = {
    'normalize_inputs': 'pre',
    'normalize_targets': 'pre',
    'unnormalize_outputs': 'post',
}
_COMPILED_PREFIX = 'model._orig_mod.'

# safetensors dtype tag -> bytes per element.
_ST_DTYPE_SIZES = {
    'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E4M3': 1, 'F8_E5M2': 1, 'I16': 2, 'U16': 2, 'F16': 2,
    'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'I64': 8, 'U64': 8, 'F64': 8,
}


class CheckpointError(ValueError):
    """A policy directory that cannot be used."""


class CheckpointNotFoundError(CheckpointError):
    """The directory or one of its required files does not exist."""


class CorruptCheckpointError(CheckpointError):
    """A file exists but is truncated, not valid safetensors/JSON, or inconsistent."""


@dataclass(frozen=True)
class CheckpointContents:
    """Everything the policy needs from a policy directory, whatever its layout.

    `weights` are the `model.*` tensors (normalization buffers removed). `pre_stats` normalize the
    inputs and training targets, `post_stats` unnormalize the predicted actions; both are nested
    {feature: {stat: tensor}} and empty when the checkpoint has none.
    """

    directory: Path
    layout: str  # '>=0.4' or 'pre-0.4'
    config: dict[str, Any]
    weights: dict[str, Tensor]
    pre_stats: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    post_stats: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    norm_map: dict[str, str] | None = None
    eps: float = DEFAULT_EPS
    tokenizer_name: str | None = None
    ignored_keys: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# safetensors and JSON with clear errors


def check_safetensors(path: Path) -> dict[str, Any]:
    """Validate a safetensors file's header against its size; return the header.

    Catches the usual damage (a download cut short, a zero-length file, a non-safetensors file
    renamed) with a message that says which file and how, before the real loader runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f'{path} does not exist')
    size = path.stat().st_size
    if size < 8:
        raise CorruptCheckpointError(f'{path} is {size} bytes: too short to be safetensors')
    with path.open('rb') as fh:
        (header_len,) = struct.unpack('<Q', fh.read(8))
        if header_len > size - 8:
            raise CorruptCheckpointError(
                f'{path}: header claims {header_len} bytes but the file has only {size} bytes '
                f'(truncated or not a safetensors file)')
        raw = fh.read(header_len)
    try:
        header = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpointError(f'{path}: header is not valid JSON ({exc})') from None
    if not isinstance(header, dict):
        raise CorruptCheckpointError(f'{path}: header is not a JSON object')
    data_len = size - 8 - header_len
    for name, info in header.items():
        if name == '__metadata__':
            continue
        try:
            dtype, shape, (begin, end) = info['dtype'], info['shape'], info['data_offsets']
            itemsize = _ST_DTYPE_SIZES[dtype]
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpointError(
                f'{path}: tensor {name!r} has a malformed header entry') from None
        if end > data_len:
            raise CorruptCheckpointError(
                f'{path} is truncated: tensor {name!r} ends at byte {end} of the data section, '
                f'which has only {data_len} bytes')
        if end - begin != math.prod(shape) * itemsize:
            raise CorruptCheckpointError(
                f'{path}: tensor {name!r} {dtype}{list(shape)} does not match its byte range')
    return header


def load_safetensors(path: Path) -> dict[str, Tensor]:
    """All tensors of a safetensors file on the CPU, after check_safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_safetensors(path)
    try:
        return load_file(str(path), device='cpu')
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CorruptCheckpointError(f'{path}: cannot read safetensors ({exc})') from exc


def save_safetensors(tensors: Mapping[str, Tensor], path: Path,
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors atomically (temp file + rename); shared storage is copied apart."""
    from safetensors.torch import save_file

    seen: set[tuple[int, int]] = set()
    clean: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        t = tensor.detach().to('cpu')
        ident = (t.untyped_storage().data_ptr(), t.storage_offset())
        clean[name] = t.clone().contiguous() if ident in seen or not t.is_contiguous() else t
        seen.add(ident)
    # Always some metadata: safetensors 0.8 writes an invalid header for no tensors + {} metadata.
    meta = {'format': 'pt', **dict(metadata or {})}
    _atomic_write(Path(path), lambda tmp: save_file(clean, str(tmp), metadata=meta))


def read_json(path: Path) -> Any:
    """Parsed JSON with CheckpointNotFoundError / CorruptCheckpointError instead of bare errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f'{path} does not exist')
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpointError(f'{path} is not valid JSON ({exc})') from None


def write_json(data: Any, path: Path) -> None:
    """Write JSON atomically, indented like LeRobot's files."""
    text = json.dumps(data, indent=4) + '\n'
    _atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding='utf-8'))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, writer: Any) -> None:
    """writer(tmp) then rename over `path`; the file is created by the writer (umask perms)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its files 0600
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------------------------
# reading


def feature_keys(config: Mapping[str, Any]) -> list[str]:
    """Input and output feature keys named in a raw config.json dict."""
    keys: list[str] = []
    for section in ('input_features', 'output_features'):
        value = config.get(section) or {}
        if not isinstance(value, Mapping):
            raise CorruptCheckpointError(f'config.json: {section} must be an object')
        keys.extend(value)
    return keys


def split_legacy_buffers(weights: Mapping[str, Tensor], keys: Iterable[str],
                         ) -> tuple[dict[str, Tensor], dict[str, dict[str, Tensor]],
                                    dict[str, dict[str, Tensor]], list[str]]:
    """Separate pre-0.4 normalization buffers from the model weights.

    Returns (model weights, pre stats, post stats, ignored buffer keys). A buffer is
    `<module>.buffer_<feature key with . -> _>.<stat>`; buffers that match no feature
    (smolvla_base's dataset-variant-prefixed ones) and buffers still at their +inf initial value
    are ignored.
    """
    by_buffer = {'buffer_' + k.replace('.', '_'): k for k in keys}
    model: dict[str, Tensor] = {}
    pre: dict[str, dict[str, Tensor]] = {}
    post: dict[str, dict[str, Tensor]] = {}
    ignored: list[str] = []
    for name, tensor in weights.items():
        module = name.split('.', 1)[0]
        if module not in _LEGACY_MODULES:
            if name.startswith(_COMPILED_PREFIX):  # saved from a torch.compile'd model
                name = 'model.' + name[len(_COMPILED_PREFIX):]
            model[name] = tensor
            continue
        parts = name.split('.')
        feature = by_buffer.get(parts[1]) if len(parts) == 3 else None
        if feature is None or not torch.isfinite(tensor).all():
            ignored.append(name)
            continue
        target = pre if _LEGACY_MODULES[module] == 'pre' else post
        stats = target.setdefault(feature, {})
        stat = parts[2]
        if stat in stats and not torch.equal(stats[stat], tensor.float()):
            logger.warning('pre-0.4 buffers disagree on %s.%s; using %s', feature, stat, name)
        stats[stat] = to_stat_tensor(tensor)
    return model, pre, post, ignored


def _find_step(pipeline: Mapping[str, Any], registry_name: str,
               path: Path) -> dict[str, Any] | None:
    steps = pipeline.get('steps')
    if not isinstance(steps, list):
        raise CorruptCheckpointError(f'{path}: "steps" must be a list')
    for step in steps:
        if not isinstance(step, Mapping):
            raise CorruptCheckpointError(f'{path}: every step must be an object')
        name = step.get('registry_name') or str(step.get('class', '')).rsplit('.', 1)[-1]
        if name == registry_name:
            return dict(step)
    return None


def _step_stats(directory: Path, step: Mapping[str, Any] | None) -> dict[str, dict[str, Tensor]]:
    if step is None or not step.get('state_file'):
        return {}
    name = str(step['state_file'])
    if Path(name).name != name or name in ('.', '..'):
        raise CorruptCheckpointError(f'state_file {name!r} must be a file name inside {directory}')
    state_path = directory / name
    if not state_path.is_file():
        raise CheckpointNotFoundError(f'{state_path} (named by the processor JSON) does not exist')
    return split_flat_stats(load_safetensors(state_path))


def read_checkpoint(directory: str | Path) -> CheckpointContents:
    """Read a LeRobot SmolVLA policy directory in either layout (see the module docstring)."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise CheckpointNotFoundError(f'{directory} is not a directory')
    config = read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict):
        raise CorruptCheckpointError(f'{directory / CONFIG_FILE} is not a JSON object')
    if config.get('type', 'smolvla') != 'smolvla':
        raise CheckpointError(f'{directory} holds a {config.get("type")!r} policy, not smolvla')
    raw = load_safetensors(directory / MODEL_FILE)
    weights, pre, post, ignored = split_legacy_buffers(raw, feature_keys(config))
    if not any(k.startswith('model.') for k in weights):
        raise CorruptCheckpointError(f'{directory / MODEL_FILE} has no `model.*` weights')

    pre_json = directory / f'{PREPROCESSOR_NAME}.json'
    post_json = directory / f'{POSTPROCESSOR_NAME}.json'
    if not pre_json.exists() and not post_json.exists():
        if ignored:
            logger.warning('ignored %d pre-0.4 normalization buffers that match no feature or '
                           'were never set: %s', len(ignored), ', '.join(ignored[:6]))
        return CheckpointContents(directory=directory, layout='pre-0.4', config=config,
                                  weights=weights, pre_stats=pre, post_stats=post,
                                  ignored_keys=tuple(ignored))
    if ignored or pre or post:
        logger.warning('%s has processor files and in-model normalization buffers; the processor '
                       'stats are used', directory)
    pre_pipe = read_json(pre_json)
    post_pipe = read_json(post_json)
    for path, pipe in ((pre_json, pre_pipe), (post_json, post_pipe)):
        if not isinstance(pipe, Mapping):
            raise CorruptCheckpointError(f'{path} is not a JSON object')
    norm_step = _find_step(pre_pipe, NORMALIZER_STEP, pre_json)
    unnorm_step = _find_step(post_pipe, UNNORMALIZER_STEP, post_json)
    tok_step = _find_step(pre_pipe, TOKENIZER_STEP, pre_json)
    step_cfg = dict((norm_step or unnorm_step or {}).get('config') or {})
    norm_map = step_cfg.get('norm_map')
    tokenizer_name = None
    if tok_step is not None:
        name = (tok_step.get('config') or {}).get('tokenizer_name')
        if name:
            local = directory / str(name)
            tokenizer_name = str(local) if local.is_dir() else str(name)
    if tokenizer_name is None and (directory / TOKENIZER_DIR).is_dir():
        tokenizer_name = str(directory / TOKENIZER_DIR)
    return CheckpointContents(
        directory=directory, layout='>=0.4', config=config, weights=weights,
        pre_stats=_step_stats(directory, norm_step), post_stats=_step_stats(directory, unnorm_step),
        norm_map=dict(norm_map) if isinstance(norm_map, Mapping) else None,
        eps=float(step_cfg.get('eps', DEFAULT_EPS)), tokenizer_name=tokenizer_name,
        ignored_keys=tuple(ignored))


# --------------------------------------------------------------------------------------------
# writing (>= 0.4 layout)


def _features_json(features: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    from smolvla_ros.policy.normalize import FeatureSpec

    out = {}
    for key, feature in features.items():
        spec = FeatureSpec.from_any(feature)
        out[key] = {'type': spec.type, 'shape': list(spec.shape)}
    return out


def processor_jsons(*, input_features: Mapping[str, Any], output_features: Mapping[str, Any],
                    norm_map: Mapping[str, str], eps: float, tokenizer_name: str,
                    max_length: int, padding: str, device: str = 'cpu',
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The policy_preprocessor.json / policy_postprocessor.json contents LeRobot >= 0.4 writes."""
    all_features = {**_features_json(input_features), **_features_json(output_features)}
    pre = {
        'name': PREPROCESSOR_NAME,
        'steps': [
            {'registry_name': 'rename_observations_processor', 'config': {'rename_map': {}}},
            {'registry_name': 'to_batch_processor', 'config': {}},
            {'registry_name': 'smolvla_new_line_processor', 'config': {}},
            {'registry_name': TOKENIZER_STEP, 'config': {
                'tokenizer_name': tokenizer_name, 'max_length': max_length, 'task_key': 'task',
                'padding_side': 'right', 'padding': padding, 'truncation': True}},
            {'registry_name': 'device_processor',
             'config': {'device': device, 'float_dtype': None}},
            {'registry_name': NORMALIZER_STEP,
             'config': {'eps': eps, 'features': all_features, 'norm_map': dict(norm_map)},
             'state_file': PREPROCESSOR_STATS_FILE},
        ],
    }
    post = {
        'name': POSTPROCESSOR_NAME,
        'steps': [
            {'registry_name': UNNORMALIZER_STEP,
             'config': {'eps': eps, 'features': _features_json(output_features),
                        'norm_map': dict(norm_map)},
             'state_file': POSTPROCESSOR_STATS_FILE},
            {'registry_name': 'device_processor', 'config': {'device': 'cpu', 'float_dtype': None}},
        ],
    }
    return pre, post


def write_checkpoint(directory: str | Path, *, config_writer: Any, state_dict: Mapping[str, Tensor],
                     pre_stats_flat: Mapping[str, Tensor], post_stats_flat: Mapping[str, Tensor],
                     preprocessor: Mapping[str, Any], postprocessor: Mapping[str, Any],
                     tokenizer: Any = None) -> Path:
    """Write a >= 0.4 policy directory; files appear complete or not at all.

    `config_writer(path)` writes config.json (SmolVLAConfig.save_json). The tokenizer, when given,
    is saved into tokenizer/ (the preprocessor JSON should then name 'tokenizer').
    """
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.staging-', dir=directory))
    try:
        config_writer(staging / CONFIG_FILE)
        save_safetensors(state_dict, staging / MODEL_FILE, metadata={'format': 'pt'})
        write_json(preprocessor, staging / f'{PREPROCESSOR_NAME}.json')
        write_json(postprocessor, staging / f'{POSTPROCESSOR_NAME}.json')
        save_safetensors(pre_stats_flat, staging / PREPROCESSOR_STATS_FILE)
        save_safetensors(post_stats_flat, staging / POSTPROCESSOR_STATS_FILE)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(staging / TOKENIZER_DIR))
        for item in sorted(staging.iterdir()):
            target = directory / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
