"""SmolVLAPolicy: the public API around the flow-matching model (load, predict, train, save).

    batch {'observation.images.<cam>': [B,3,H,W] in [0,1], 'observation.state': [B,S],
           'task': [str]}
      │ validate keys ─ normalize (stats of the checkpoint) ─ resize-with-pad + [-1,1] ─ pad state
      │ tokenize task + '\\n' (right padded)
      v
    VLAFlowMatching.sample_actions ── normalized, padded [B, chunk_size, max_action_dim]
      │ crop to action_dim ─ unnormalize
      v
    float32 [B, chunk_size, action_dim] in the dataset's units

The state dict holds only `model.*` (the model is `self.model`), so LeRobot checkpoints load
without renaming; normalization stats live in the Normalizers, not in buffers. Loading accepts a
LeRobot policy directory in either layout (checkpoint.py) or a preset name ('tiny', 'smolvla_base'),
whose weights are random but reproducible (seed 0).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
import contextlib
import logging
import numbers
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from smolvla_ros.policy import checkpoint as ckpt
from smolvla_ros.policy.configuration_smolvla import (
    ACTION_KEY,
    IMAGE_PREFIX,
    STATE_KEY,
    SmolVLAConfig,
)
from smolvla_ros.policy.errors import PolicyInputError
from smolvla_ros.policy.normalize import DEFAULT_EPS, Normalizer
from smolvla_ros.policy.precision import resolve_dtype
from smolvla_ros.policy.processor_smolvla import (
    ProcessingError,
    as_task_list,
    pad_vector,
    prepare_image,
    prepare_state,
    to_model_range,
    tokenize_tasks,
)
from smolvla_ros.policy.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

PRESETS = ('tiny', 'sim_small', 'smolvla_base')
PRESET_SEED = 0
EMPTY_CAMERA_PREFIX = f'{IMAGE_PREFIX}empty_camera_'
LANG_TOKENS_KEY = 'observation.language.tokens'
LANG_MASK_KEY = 'observation.language.attention_mask'
# Weights LeRobot keeps but never uses: a checkpoint without them still loads.
OPTIONAL_WEIGHTS = ('model.vlm_with_expert.vlm.lm_head.weight',)
# VLAFlowMatching methods that compile_sampler compiles (what one chunk runs, outside the loop).
COMPILED_METHODS = ('embed_prefix', 'fill_prefix_cache', 'denoise_step')


class FeatureMismatchError(ValueError):
    """The inputs offered do not match the policy's input features (names the exact keys)."""


def _skip_weight_init() -> contextlib.AbstractContextManager[Any]:
    """Skip random initialisation while building a model whose weights are loaded next."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers: initialise (slower, same result)
        return contextlib.nullcontext()
    return no_init_weights()


def _model_class() -> type[nn.Module]:
    from smolvla_ros.policy.modeling_smolvla import VLAFlowMatching

    return VLAFlowMatching


class SmolVLAPolicy(nn.Module):
    """SmolVLA with LeRobot's pre/post-processing, checkpoint formats and loss reduction."""

    name = 'smolvla'

    def __init__(self, config: SmolVLAConfig,
                 dataset_stats: Mapping[str, Mapping[str, Any]] | None = None, *,
                 post_stats: Mapping[str, Mapping[str, Any]] | None = None,
                 norm_map: Mapping[str, str] | None = None, eps: float = DEFAULT_EPS,
                 tokenizer: Any = None, tokenizer_name: str | None = None) -> None:
        """Build a randomly initialised policy.

        `dataset_stats` ({feature: {stat: values}}, e.g. a LeRobot dataset's meta stats) normalize
        the inputs and training targets; `post_stats` unnormalize the predictions (default: the
        same stats). `norm_map` overrides config.normalization_mapping (checkpoints store one).
        """
        super().__init__()
        if config.action_feature is None or config.state_feature is None:
            raise FeatureMismatchError('SmolVLA needs an "observation.state" input and an "action" '
                                       'output feature in the config')
        if not config.image_features:
            raise FeatureMismatchError('SmolVLA needs at least one VISUAL input feature')
        self.config = config
        self.compiled: str | None = None  # the torch.compile mode, once compile_sampler ran
        self._tokenizer = tokenizer
        self.tokenizer_name = tokenizer_name or config.vlm_model_name
        special_ids = None
        if config.add_image_special_tokens:  # the model embeds these ids around each image
            special_ids = tuple(self.tokenizer.convert_tokens_to_ids(t)
                                for t in ('<fake_token_around_image>', '<global-img>'))
        self.model = _model_class()(config, image_special_token_ids=special_ids)
        norm_map = dict(norm_map or config.normalization_mapping)
        all_features = {**config.input_features, **config.output_features}
        self.normalizer = Normalizer(all_features, norm_map, dataset_stats, eps)
        self.unnormalizer = Normalizer(config.output_features, norm_map,
                                       dataset_stats if post_stats is None else post_stats, eps)

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(cls, path_or_preset: str | Path, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None, *, force_dtype: bool = False,
                        compile_mode: str | None = None) -> SmolVLAPolicy:
        """Load a LeRobot SmolVLA policy directory (>= 0.4 or pre-0.4 layout) or a preset.

        Only safetensors and JSON are read. Missing weights or shape mismatches raise
        CheckpointError naming the keys; unexpected keys are logged. The policy is returned in
        eval mode on `device` (default CPU) in `dtype` (default float32; see set_dtype).
        bfloat16/float16 on a device without native arithmetic for them (a CPU without
        AVX512-BF16/AMX, precision.py) keep float32 with a warning unless `force_dtype` (or
        SMOLVLA_ROS_FORCE_DTYPE=1). `compile_mode` (e.g. 'default', 'max-autotune') compiles the
        sampler's pieces with torch.compile (see compile_sampler).
        """
        path = Path(path_or_preset).expanduser()
        if str(path_or_preset) in PRESETS and not path.is_dir():
            config = SmolVLAConfig.preset(str(path_or_preset))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(PRESET_SEED)
                policy = cls(config)
        else:
            if not path.exists():
                raise ckpt.CheckpointNotFoundError(
                    f'{path_or_preset!s} is neither a policy directory nor a preset {PRESETS}')
            contents = ckpt.read_checkpoint(path)
            config = SmolVLAConfig.from_dict(contents.config)
            with _skip_weight_init():  # every weight is overwritten below (~7x faster start)
                policy = cls(config, contents.pre_stats, post_stats=contents.post_stats,
                             norm_map=contents.norm_map, eps=contents.eps,
                             tokenizer_name=contents.tokenizer_name)
            policy.load_weights(contents.weights, source=path / ckpt.MODEL_FILE)
            missing = sorted(set(policy.normalizer.missing_stats())
                             | set(policy.unnormalizer.missing_stats()))
            if missing:
                logger.warning('%s has no normalization stats for %s: they pass through '
                               'unnormalized (as in LeRobot; expected for lerobot/smolvla_base)',
                               path, missing)
        device = torch.device(device or 'cpu')
        policy.to(device=device)
        if dtype is not None:
            policy.set_dtype(resolve_dtype(dtype, device, force=force_dtype))
        policy.eval()
        if compile_mode is not None:
            policy.compile_sampler(compile_mode)
        return policy

    def set_dtype(self, dtype: torch.dtype) -> SmolVLAPolicy:
        """Cast the weights. bf16/fp16 follow LeRobot's checkpoints: the 5 projections and the
        expert's cross-attention k/v stay float32 (docs/lerobot_compat.md, "Dtypes"); other
        dtypes cast everything."""
        if not dtype.is_floating_point:
            raise PolicyInputError(f'dtype must be a floating point type, got {dtype}')
        if dtype in (torch.bfloat16, torch.float16):
            self.model.to_lerobot_dtypes(dtype)
        else:
            self.to(dtype=dtype)
        return self

    def compile_sampler(self, mode: str = 'default') -> SmolVLAPolicy:
        """torch.compile the three pieces of a chunk: the prefix embedding (vision tower,
        connector, language, state), the prefix pass that fills the KV cache, and one denoising
        step (run `num_steps` times per chunk).

        Each is compiled for static shapes, so it is traced once per camera/batch/token layout;
        the Euler loop, RTC guidance and input checks stay in Python around them, where a
        compiled graph would only break. The first chunk pays the compilation (seconds on a GPU,
        minutes for smolvla_base on a small CPU; inductor needs a C++ compiler on the CPU).
        `mode` is torch.compile's ('default', 'reduce-overhead': CUDA graphs, 'max-autotune').
        Outputs match eager within float rounding (docs/policy.md, "dtype, device, compile").
        """
        model = self.model
        for name in COMPILED_METHODS:
            eager = getattr(type(model), name).__get__(model)
            setattr(model, name, torch.compile(eager, mode=mode, dynamic=False))
        self.compiled = mode
        return self

    def load_weights(self, weights: Mapping[str, Tensor], source: Path | str = 'weights') -> None:
        """Copy `model.*` tensors into the model, with named errors for missing/misshapen keys."""
        own = self.state_dict()
        missing = [k for k in own if k not in weights and k not in OPTIONAL_WEIGHTS]
        if missing:
            raise ckpt.CheckpointError(
                f'{source} lacks {len(missing)} weights the model needs, e.g. {missing[:5]}')
        wrong = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                 for k, v in weights.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if wrong:
            raise ckpt.CheckpointError(f'{source} has weights of the wrong shape: {wrong[:5]}')
        for key in OPTIONAL_WEIGHTS:
            if key in own and key not in weights:
                with torch.no_grad():
                    own[key].zero_()  # unused; defined instead of left uninitialised
        unexpected = [k for k in weights if k not in own]
        if unexpected:
            logger.warning('%s: ignoring %d unexpected weights, e.g. %s', source, len(unexpected),
                           unexpected[:5])
        self.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write a LeRobot >= 0.4 policy directory (config, weights, processor JSON + stats).

        The tokenizer is saved into tokenizer/ when it can be loaded (as LeRobot's current
        tokenizer step does), so the directory is self-contained; otherwise the preprocessor
        names `tokenizer_name` as it is.
        """
        tokenizer = None
        tokenizer_name = self.tokenizer_name
        try:
            tokenizer = self.tokenizer
            tokenizer_name = ckpt.TOKENIZER_DIR
        except (RuntimeError, OSError, ValueError) as exc:
            logger.warning('tokenizer %r not saved with the checkpoint: %s', tokenizer_name, exc)
        norm_map = {t: m.value for t, m in self.normalizer.norm_map.items()}
        pre, post = ckpt.processor_jsons(
            input_features=self.config.input_features, output_features=self.config.output_features,
            norm_map=norm_map, eps=self.normalizer.eps, tokenizer_name=tokenizer_name,
            max_length=self.config.tokenizer_max_length, padding=self.config.pad_language_to,
            device=str(self.device))
        return ckpt.write_checkpoint(
            directory, config_writer=self.config.save_json, state_dict=self.state_dict(),
            pre_stats_flat=self.normalizer.flat_stats(),
            post_stats_flat=self.unnormalizer.flat_stats(),
            preprocessor=pre, postprocessor=post, tokenizer=tokenizer)

    # ------------------------------------------------------------------ properties
    @property
    def tokenizer(self) -> Any:
        """The task tokenizer, loaded on first use from local files only (tokenizer.py)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's floating-point parameters (inputs are cast to it)."""
        for p in self.model.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    @property
    def action_dim(self) -> int:
        return self.config.output_features[ACTION_KEY].shape[0]

    @property
    def state_dim(self) -> int:
        return self.config.input_features[STATE_KEY].shape[0]

    @property
    def required_image_keys(self) -> tuple[str, ...]:
        """Image features that must be in every batch (placeholders for empty cameras excluded)."""
        return tuple(k for k in self.config.image_features if not k.startswith(EMPTY_CAMERA_PREFIX))

    # ------------------------------------------------------------------ validation
    def validate_features(self, image_keys: Iterable[str], state_dim: int | None = None,
                          action_dim: int | None = None) -> None:
        """Check offered cameras and dims against the policy; errors name the exact keys.

        The policy server calls this at start with the contract's cameras, and every batch is
        checked the same way.
        """
        offered = list(dict.fromkeys(image_keys))
        known = set(self.config.image_features)
        missing = [k for k in self.required_image_keys if k not in offered]
        extra = [k for k in offered if k not in known]
        problems = []
        if missing:
            problems.append(f'missing image features {missing}')
        if extra:
            problems.append(f'unexpected image features {extra}')
        if state_dim is not None and state_dim != self.state_dim:
            problems.append(f'{STATE_KEY} has {state_dim} dims, the policy expects '
                            f'{self.state_dim}')
        if action_dim is not None and action_dim != self.action_dim:
            problems.append(f'{ACTION_KEY} has {action_dim} dims, the policy expects '
                            f'{self.action_dim}')
        if problems:
            raise FeatureMismatchError(
                '; '.join(problems)
                + f' (the policy expects images {list(self.required_image_keys)})')

    # ------------------------------------------------------------------ preprocessing
    def _image_keys_in(self, batch: Mapping[str, Any]) -> list[str]:
        return [k for k in batch if k.startswith(IMAGE_PREFIX) and not k.endswith('_padding_mask')]

    def prepare_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Model inputs (images, img_masks, lang_tokens, lang_masks, state) from a raw batch."""
        if not isinstance(batch, Mapping):
            raise PolicyInputError(f'batch must be a dict, got {type(batch).__name__}')
        if STATE_KEY not in batch:
            raise FeatureMismatchError(f'the batch has no {STATE_KEY!r}')
        state = torch.as_tensor(batch[STATE_KEY])
        state_dim = state.shape[-1] if state.ndim >= 1 else None
        self.validate_features(self._image_keys_in(batch), state_dim=state_dim)
        device, dtype = self.device, self.dtype
        state = self.normalizer.normalize_key(STATE_KEY, state.to(device, torch.float32))
        # prepare_state refuses what is not [B,S] or [B,T,S] (the processor owns that check)
        state = prepare_state(state, self.config.max_state_dim).to(dtype)  # [B, max_state_dim]
        bsize = state.shape[0]

        images, img_masks = [], []
        size = self.config.resize_imgs_with_padding
        for key in self.config.image_features:
            if key not in batch:
                continue
            img = torch.as_tensor(batch[key])
            if not torch.is_floating_point(img):
                raise PolicyInputError(f'{key} must be float in [0, 1] (convert uint8 with '
                                       f'/ 255), got dtype {img.dtype}')
            img = img.to(device, torch.float32)
            if img.shape[0] != bsize:
                raise PolicyInputError(f'{key} has batch size {img.shape[0]}, state has {bsize}')
            img = self.normalizer.normalize_key(key, img)
            if size is not None:
                img = prepare_image(img, width=size[0], height=size[1])  # [B,3,h,w] in [-1,1]
            else:
                img = to_model_range(img[:, -1] if img.ndim == 5 else img)
            mask = batch.get(f'{key}_padding_mask')
            mask = (torch.ones(bsize, dtype=torch.bool, device=device) if mask is None
                    else torch.as_tensor(mask).to(device, torch.bool))
            images.append(img.to(dtype))
            img_masks.append(mask)
        missing = [k for k in self.config.image_features if k not in batch]
        for _ in missing[:self.config.empty_cameras]:  # placeholders: -1 images, masked out
            images.append(torch.full_like(images[0], -1.0))
            img_masks.append(torch.zeros(bsize, dtype=torch.bool, device=device))

        if 'task' in batch:
            tasks = as_task_list(batch['task'], bsize)
            tokens, masks = tokenize_tasks(self.tokenizer, tasks, self.config.tokenizer_max_length,
                                           self.config.pad_language_to)
        elif LANG_TOKENS_KEY in batch and LANG_MASK_KEY in batch:
            tokens = torch.as_tensor(batch[LANG_TOKENS_KEY]).to(torch.long)
            masks = torch.as_tensor(batch[LANG_MASK_KEY]).to(torch.bool)
        else:
            raise PolicyInputError("the batch has no 'task' (nor pre-tokenized language)")
        return {'images': images, 'img_masks': img_masks, 'lang_tokens': tokens.to(device),
                'lang_masks': masks.to(device), 'state': state}

    def _to_device(self, value: Tensor | None) -> Tensor | None:
        """Noise or flow time on the device; VLAFlowMatching checks their shapes."""
        return None if value is None else torch.as_tensor(value).to(self.device, torch.float32)

    def _normalized_actions(self, actions: Tensor, what: str, max_steps: int) -> Tensor:
        """Dataset-unit actions [B,T,action_dim] -> normalized, padded [B,T,max_action_dim]."""
        actions = torch.as_tensor(actions)
        if (actions.ndim != 3 or actions.shape[-1] != self.action_dim
                or actions.shape[1] > max_steps):
            raise PolicyInputError(
                f'{what} must be [B, <= {max_steps}, {self.action_dim}], '
                f'got {tuple(actions.shape)}')
        actions = self.normalizer.normalize_key(ACTION_KEY, actions.to(self.device, torch.float32))
        return pad_vector(actions, self.config.max_action_dim)

    # ------------------------------------------------------------------ inference / training
    @torch.no_grad()
    def predict_chunk(self, batch: Mapping[str, Any], noise: Tensor | None = None,
                      prev_chunk_left_over: Tensor | None = None,
                      inference_delay: int | None = None, num_steps: int | None = None,
                      use_cache: bool | None = None) -> Tensor:
        """One action chunk, float32 [B, chunk_size, action_dim] in dataset units.

        `noise` [B, chunk_size, max_action_dim] makes the result deterministic. With
        `prev_chunk_left_over` ([B, n, action_dim], dataset units: the not yet executed actions
        of the current chunk) and `inference_delay` (steps that pass while this chunk is
        computed), the sampler uses real-time chunking with config.rtc_config (LeRobot's guided
        step, docs/lerobot_compat.md); `inference_delay` alone (no chunk yet) is ignored.
        `num_steps` and `use_cache` override the config (use_cache=False is the naive path, for
        benchmarks).
        """
        inputs = self.prepare_inputs(batch)
        noise = self._to_device(noise)
        prev = None
        if prev_chunk_left_over is not None:
            # its batch size against the observation's: VLAFlowMatching.sample_actions checks
            prev = self._normalized_actions(prev_chunk_left_over, 'prev_chunk_left_over',
                                            self.config.chunk_size)
            if inference_delay is None:
                raise PolicyInputError('prev_chunk_left_over needs inference_delay (in steps)')
        chunk = self.config.chunk_size
        if inference_delay is not None:
            integral = (isinstance(inference_delay, numbers.Integral)
                        and not isinstance(inference_delay, bool))
            if not integral or not 0 <= inference_delay <= chunk:
                raise PolicyInputError(f'inference_delay must be an int in 0..{chunk}, '
                                       f'got {inference_delay!r}')
            inference_delay = int(inference_delay)  # numpy ints too
        actions = self.model.sample_actions(
            inputs['images'], inputs['img_masks'], inputs['lang_tokens'], inputs['lang_masks'],
            inputs['state'], noise=noise, num_steps=num_steps,
            use_cache=self.config.use_cache if use_cache is None else use_cache,
            prev_chunk_left_over=prev,
            inference_delay=inference_delay if prev is not None else None,
        )  # [B, chunk_size, max_action_dim], normalized
        actions = actions[:, :, :self.action_dim].to(torch.float32)
        return self.unnormalizer.unnormalize_key(ACTION_KEY, actions)

    def compute_loss(self, batch: Mapping[str, Any], noise: Tensor | None = None,
                     time: Tensor | None = None, reduction: str = 'mean') -> Tensor:
        """Flow-matching loss as LeRobot 0.6.1 computes it (docs/lerobot_compat.md, "Training
        loss").

        The per-element squared error is cropped to the real action dims, padded steps
        (`action_is_pad` True: past the episode end) are zeroed, and the sum is divided by the
        number of valid elements (valid steps x action_dim, at least 1). reduction='none' gives
        the same per sample, [B]. Without `action_is_pad` every step counts.
        """
        if reduction not in ('mean', 'none'):
            raise PolicyInputError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        if ACTION_KEY not in batch:
            raise PolicyInputError(f'the training batch has no {ACTION_KEY!r}')
        inputs = self.prepare_inputs(batch)
        bsize = inputs['state'].shape[0]
        chunk = self.config.chunk_size
        actions = self._normalized_actions(batch[ACTION_KEY], ACTION_KEY, chunk)
        if tuple(actions.shape[:2]) != (bsize, chunk):
            raise PolicyInputError(f'{ACTION_KEY} must be [{bsize}, {chunk}, {self.action_dim}], '
                                   f'got {tuple(torch.as_tensor(batch[ACTION_KEY]).shape)}')
        is_pad = batch.get('action_is_pad')
        if is_pad is None:
            valid = torch.ones(bsize, chunk, dtype=torch.bool, device=self.device)
        else:
            is_pad = torch.as_tensor(is_pad).to(self.device, torch.bool)
            if tuple(is_pad.shape) != (bsize, chunk):
                raise PolicyInputError(f'action_is_pad must be [{bsize}, {chunk}], '
                                       f'got {tuple(is_pad.shape)}')
            valid = ~is_pad
        noise, time = self._to_device(noise), self._to_device(time)  # VLAFlowMatching checks them
        losses = self.model(inputs['images'], inputs['img_masks'], inputs['lang_tokens'],
                            inputs['lang_masks'], inputs['state'], actions.to(self.dtype),
                            noise=noise, time=time)  # [B, chunk, max_action_dim]
        losses = losses[:, :, :self.action_dim].float() * valid[:, :, None]  # [B, chunk, A]
        if reduction == 'none':
            count = (valid.sum(dim=1) * self.action_dim).clamp(min=1)  # [B]
            return losses.sum(dim=(1, 2)) / count
        return losses.sum() / (valid.sum() * self.action_dim).clamp(min=1)


__all__ = ['FeatureMismatchError', 'PolicyInputError', 'ProcessingError', 'SmolVLAPolicy']
