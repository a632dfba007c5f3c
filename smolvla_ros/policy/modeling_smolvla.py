"""SmolVLA's flow-matching model (LeRobot's `VLAFlowMatching`; docs/lerobot_compat.md).

    images ─ vision tower + connector ─ x sqrt(Dv) ─┐
    language tokens ─ embed_tokens ─ x sqrt(Dv) ────┼─ prefix [B, P, Dv] ─┐
    state [B, 32] ─ state_proj ─ 1 token ───────────┘                     ├─ SmolVLMWithExpertModel
    x_t [B, 50, 32] ─ action_in_proj ─┐                                   │     (paired layers)
    t [B] ─ sinusoid(720) ────────────┴─ time MLP ─ suffix [B, 50, De] ───┘           │
                                                  v_t [B, 50, 32] = action_out_proj(suffix out)

Training: x_t = t * noise + (1 - t) * actions, loss (noise - actions - v_t)^2 per element.
Inference: prefix once into a KV cache, then `num_steps` Euler steps from t = 1 (noise) to t = 0,
optionally guided by real-time chunking. Everything here is in normalized, zero-padded units; the
policy wrapper (policy.py) does images, tokens, normalization and unpadding.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
import re

import torch
from torch import Tensor, nn

from smolvla_ros.policy.configuration_smolvla import RTCConfig, SmolVLAConfig
from smolvla_ros.policy.errors import PolicyInputError
from smolvla_ros.policy.flow_matching import (
    euler_integrate,
    interpolate,
    sample_noise,
    sample_time,
)
from smolvla_ros.policy.rtc import make_guided_denoise_fn
from smolvla_ros.policy.smolvlm_with_expert import PrefixKVCache, SmolVLMWithExpertModel

logger = logging.getLogger(__name__)

# Parameters LeRobot keeps in float32 when the rest of the model is bfloat16
# (docs/lerobot_compat.md, "Dtypes").
FP32_MODULES = ('state_proj', 'action_in_proj', 'action_out_proj', 'action_time_mlp_in',
                'action_time_mlp_out')


class ModelInputError(PolicyInputError):
    """A tensor given to VLAFlowMatching has the wrong shape, dtype or count."""


class VLMWeightsError(RuntimeError):
    """A SmolVLM weights directory is missing, unreadable or does not fit the configured VLM."""


def sinusoidal_time_embedding(time: Tensor, dim: int, min_period: float,
                              max_period: float) -> Tensor:
    """[sin(2 pi t / p), cos(2 pi t / p)] for periods p from min to max: time [B] -> [B, dim].

    Computed in float64 where the device has it, like LeRobot's
    `create_sinusoidal_pos_embedding`; the caller casts.
    """
    if dim % 2:
        raise ValueError(f'time embedding dimension must be even, got {dim}')
    dtype = torch.float32 if time.device.type == 'mps' else torch.float64
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=dtype, device=time.device)
    period = min_period * (max_period / min_period) ** fraction  # [dim/2]
    scaling = 1.0 / period * 2 * math.pi
    angles = scaling[None, :] * time[:, None]  # [B, dim/2]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _safetensors_files(directory: Path) -> list[Path]:
    """The weight files of a transformers checkpoint directory (single file or index + shards)."""
    if not directory.is_dir():
        raise VLMWeightsError(f'{directory} is not a directory with SmolVLM weights')
    index = directory / 'model.safetensors.index.json'
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())['weight_map']
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise VLMWeightsError(f'{index} is not a safetensors index: {exc}') from exc
        return [directory / name for name in sorted(set(weight_map.values()))]
    single = directory / 'model.safetensors'
    if single.is_file():
        return [single]
    raise VLMWeightsError(f'{directory} has no model.safetensors (only safetensors are read)')


def make_att_2d_masks(pad_masks: Tensor, ar_flags: Tensor) -> Tensor:
    """Query i sees key j iff cumsum(ar)[j] <= cumsum(ar)[i], both valid: [B, N] -> [B, N, N].

    ar flag 0 continues a bidirectional block, 1 starts a new causal step (big_vision convention).
    """
    cumsum = torch.cumsum(ar_flags, dim=1)  # [B, N]
    att = cumsum[:, None, :] <= cumsum[:, :, None]  # [B, N(query), N(key)]
    valid = pad_masks[:, None, :] & pad_masks[:, :, None]
    return att & valid


class VLAFlowMatching(nn.Module):
    """SmolVLA's model; parameter names are LeRobot's minus the policy's leading `model.`."""

    def __init__(self, config: SmolVLAConfig,
                 image_special_token_ids: tuple[int, int] | None = None) -> None:
        """Build from `config` (random weights; load a state dict afterwards).

        image_special_token_ids: (`<fake_token_around_image>`, `<global-img>`) ids from the
        tokenizer, needed only when `config.add_image_special_tokens`.
        """
        super().__init__()
        self.config = config
        if config.add_image_special_tokens and image_special_token_ids is None:
            raise ValueError('add_image_special_tokens needs image_special_token_ids '
                             '(<fake_token_around_image>, <global-img>) from the tokenizer')
        self.image_special_token_ids = image_special_token_ids
        self.vlm_with_expert = SmolVLMWithExpertModel(
            config.vlm_config(),
            num_vlm_layers=config.num_vlm_layers,
            num_expert_layers=config.num_expert_layers,
            self_attn_every_n_layers=config.self_attn_every_n_layers,
            attention_mode=config.attention_mode,
            expert_width_multiplier=config.expert_width_multiplier,
            freeze_vision_encoder=config.freeze_vision_encoder,
            train_expert_only=config.train_expert_only,
        )
        dv = self.vlm_with_expert.vlm_hidden
        de = self.vlm_with_expert.expert_hidden
        self.state_proj = nn.Linear(config.max_state_dim, dv)
        self.action_in_proj = nn.Linear(config.max_action_dim, de)
        self.action_out_proj = nn.Linear(de, config.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * de, de)
        self.action_time_mlp_out = nn.Linear(de, de)
        for p in self.state_proj.parameters():
            p.requires_grad_(config.train_state_proj)

    # --- dtype ---
    def to_lerobot_dtypes(self, dtype: torch.dtype = torch.bfloat16) -> VLAFlowMatching:
        """Cast like LeRobot's checkpoints: everything to `dtype` except the 5 projections and the
        expert's cross-attention k/v_proj, which stay float32 (docs/lerobot_compat.md, "Dtypes")."""
        keep = [getattr(self, name) for name in FP32_MODULES]
        expert = self.vlm_with_expert
        for i in range(expert.num_vlm_layers):
            j = expert._expert_index(i)
            if j is not None and expert._is_cross(i):
                attn = expert.lm_expert.layers[j].self_attn
                keep += [attn.k_proj, attn.v_proj]
        # Cast everything else without a round trip of the kept tensors through `dtype`, which
        # would leave bf16-rounded values in the "float32" weights.
        kept = {id(t) for module in keep for t in (*module.parameters(), *module.buffers())}
        for module in keep:
            module.to(torch.float32)
        with torch.no_grad():
            for param in self.parameters():
                if id(param) not in kept and param.is_floating_point():
                    param.data = param.data.to(dtype)
            for module in self.modules():
                for name, buf in module._buffers.items():
                    if buf is not None and id(buf) not in kept and buf.is_floating_point():
                        module._buffers[name] = buf.to(dtype)
        return self

    # --- pretrained VLM weights ---
    def load_vlm_weights(self, directory: str | os.PathLike[str]) -> list[str]:
        """Copy a SmolVLM checkpoint's weights (transformers layout) into the VLM.

        This is LeRobot's `load_vlm_weights=True` for a local SmolVLM directory (model.safetensors
        or shards listed in model.safetensors.index.json): the start of a fine-tune from the VLM
        alone. Text layers beyond `num_vlm_layers` are skipped and returned; a missing tensor,
        a shape mismatch or an unreadable file raises VLMWeightsError. Policy checkpoints load
        through the policy's own state dict instead and never need this.
        """
        from safetensors import SafetensorError, safe_open

        files = _safetensors_files(Path(directory))
        target = self.vlm_with_expert.vlm.state_dict()
        n_layers = self.vlm_with_expert.num_vlm_layers
        loaded, skipped = set(), []
        for file in files:
            try:
                with safe_open(str(file), framework='pt') as reader:
                    for key in reader.keys():  # noqa: SIM118 (safe_open is not a dict)
                        layer = re.match(r'model\.text_model\.layers\.(\d+)\.', key)
                        if layer and int(layer.group(1)) >= n_layers:
                            skipped.append(key)
                            continue
                        if key not in target:
                            raise VLMWeightsError(f'{file}: tensor {key!r} has no place in the '
                                                  'configured VLM (wrong vlm_model_name?)')
                        tensor = reader.get_tensor(key)
                        if tuple(tensor.shape) != tuple(target[key].shape):
                            raise VLMWeightsError(
                                f'{file}: {key} has shape {list(tensor.shape)}, the VLM expects '
                                f'{list(target[key].shape)}')
                        with torch.no_grad():
                            target[key].copy_(tensor.to(target[key].dtype))
                        loaded.add(key)
            except (SafetensorError, OSError) as exc:
                raise VLMWeightsError(f'cannot read {file}: {exc}') from exc
        missing = sorted(set(target) - loaded)
        if missing:
            raise VLMWeightsError(f'{directory} lacks {len(missing)} VLM tensors, e.g. '
                                  f'{missing[:3]}')
        logger.info('loaded %d VLM tensors from %s, skipped %d of unused text layers',
                    len(loaded), directory, len(skipped))
        return skipped

    # --- embeddings ---
    def embed_prefix(self, images: list[Tensor], img_masks: list[Tensor], lang_tokens: Tensor,
                     lang_masks: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Images, language and state -> (embs [B, P, Dv], pad_masks [B, P], ar_flags [B, P])."""
        vwe = self.vlm_with_expert
        bsize = state.shape[0]
        device = state.device
        dv = vwe.vlm_hidden
        embs, pads, ars = [], [], []
        for img_emb, mask in zip(self._embed_images(images), img_masks, strict=True):
            img_emb = img_emb * torch.tensor(dv ** 0.5, dtype=img_emb.dtype, device=device)
            n = img_emb.shape[1]
            if self.config.add_image_special_tokens:
                fake_id, global_id = self.image_special_token_ids
                ids = torch.tensor([fake_id, global_id, fake_id], device=device)
                special = vwe.embed_language_tokens(ids)[None].expand(bsize, -1, -1)  # [B, 3, Dv]
                embs += [special[:, :2], img_emb, special[:, 2:]]
                pads += [torch.ones(bsize, 2, dtype=torch.bool, device=device),
                         mask[:, None].expand(bsize, n), torch.ones(bsize, 1, dtype=torch.bool,
                                                                   device=device)]
                n += 3
            else:
                embs.append(img_emb)
                pads.append(mask[:, None].expand(bsize, n))
            ars += [0] * n
        lang_emb = vwe.embed_language_tokens(lang_tokens) * math.sqrt(dv)  # [B, L, Dv]
        embs.append(lang_emb)
        pads.append(lang_masks)
        ars += [0] * lang_emb.shape[1]
        state_emb = self.state_proj(state.to(self.state_proj.weight.dtype))[:, None, :]  # [B,1,Dv]
        embs.append(state_emb)
        pads.append(torch.ones(bsize, 1, dtype=torch.bool, device=device))
        ars.append(1)
        dtype = torch.promote_types(torch.promote_types(embs[0].dtype, lang_emb.dtype),
                                    state_emb.dtype)
        emb = torch.cat([e.to(dtype) for e in embs], dim=1)  # [B, P, Dv]
        pad = torch.cat(pads, dim=1)  # [B, P]
        ar = torch.tensor(ars, dtype=torch.int64, device=device)[None].expand(bsize, -1)
        if self.config.prefix_length > emb.shape[1]:
            extra = self.config.prefix_length - emb.shape[1]
            emb = torch.cat([emb, emb.new_zeros(bsize, extra, dv)], dim=1)
            pad = torch.cat([pad, pad.new_zeros(bsize, extra)], dim=1)
            ar = torch.cat([ar, ar.new_zeros(bsize, extra)], dim=1)
        return emb, pad, ar

    def _embed_images(self, images: list[Tensor]) -> list[Tensor]:
        """Each [B, 3, H, W] -> [B, T, Dv]; same-size images go through the tower as one batch."""
        vwe = self.vlm_with_expert
        if len({tuple(img.shape) for img in images}) == 1:
            out = vwe.embed_image(torch.cat(images, dim=0))  # [N*B, T, Dv]
            return list(out.chunk(len(images), dim=0))
        return [vwe.embed_image(img) for img in images]

    def embed_suffix(self, noisy_actions: Tensor, time: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x_t [B, T, A] and t [B] -> (embs [B, T, De], pad_masks [B, T], ar_flags [B, T])."""
        action_emb = self.action_in_proj(noisy_actions.to(self.action_in_proj.weight.dtype))
        de = action_emb.shape[-1]
        time_emb = sinusoidal_time_embedding(time, de, self.config.min_period,
                                             self.config.max_period).to(action_emb.dtype)
        time_emb = time_emb[:, None, :].expand_as(action_emb)  # [B, T, De]
        x = self.action_time_mlp_in(torch.cat([action_emb, time_emb], dim=2))  # [B, T, De]
        x = self.action_time_mlp_out(nn.functional.silu(x))
        bsize, t_len = x.shape[:2]
        pad = torch.ones(bsize, t_len, dtype=torch.bool, device=x.device)
        ar = torch.ones(bsize, t_len, dtype=torch.int64, device=x.device)
        return x, pad, ar

    def _velocity(self, suffix_out: Tensor) -> Tensor:
        """Last chunk_size suffix outputs [B, T, De] -> velocity [B, T, A] in float32."""
        out = suffix_out[:, -self.config.chunk_size:].to(torch.float32)
        return self.action_out_proj(out.to(self.action_out_proj.weight.dtype)).to(torch.float32)

    # --- training ---
    def forward(self, images: list[Tensor], img_masks: list[Tensor], lang_tokens: Tensor,
                lang_masks: Tensor, state: Tensor, actions: Tensor, noise: Tensor | None = None,
                time: Tensor | None = None) -> Tensor:
        """Per-element flow-matching loss (u_t - v_t)^2, [B, chunk_size, max_action_dim], float32.

        noise defaults to N(0, I) and time to 0.999 * Beta(1.5, 1) + 0.001. No reduction here:
        the policy crops to the real action dims and masks padded steps (docs/lerobot_compat.md,
        "Training loss").
        """
        self._check_inputs(images, img_masks, lang_tokens, lang_masks, state)
        cfg = self.config
        bsize = state.shape[0]
        expected = (bsize, cfg.chunk_size, cfg.max_action_dim)
        if tuple(actions.shape) != expected:
            raise ModelInputError(f'actions must be {list(expected)}, got {list(actions.shape)}')
        if noise is None:
            noise = sample_noise(expected, actions.device)
        elif tuple(noise.shape) != expected:
            raise ModelInputError(f'noise must be {list(expected)}, got {list(noise.shape)}')
        if time is None:
            time = sample_time(bsize, actions.device)
        elif tuple(time.shape) != (bsize,):
            raise ModelInputError(f'time must be [{bsize}], got {list(time.shape)}')
        x_t, u_t = interpolate(noise.to(torch.float32), actions.to(torch.float32),
                               time.to(torch.float32))
        prefix = self.embed_prefix(images, img_masks, lang_tokens, lang_masks, state)
        v_t = self._full_velocity(prefix, x_t, time)
        return (u_t - v_t) ** 2

    def _full_velocity(self, prefix: tuple[Tensor, Tensor, Tensor], x_t: Tensor,
                       time: Tensor) -> Tensor:
        """One pass over [prefix ; suffix] without a cache (training and the naive sampler)."""
        prefix_embs, prefix_pad, prefix_ar = prefix
        suffix_embs, suffix_pad, suffix_ar = self.embed_suffix(x_t, time)
        pad = torch.cat([prefix_pad, suffix_pad], dim=1)  # [B, P + T]
        ar = torch.cat([prefix_ar, suffix_ar], dim=1)
        att_2d = make_att_2d_masks(pad, ar)  # [B, P + T, P + T]
        position_ids = torch.cumsum(pad, dim=1) - 1
        _, suffix_out, _ = self.vlm_with_expert(prefix_embs, suffix_embs, att_2d, position_ids)
        return self._velocity(suffix_out)

    # --- inference ---
    def sample_actions(self, images: list[Tensor], img_masks: list[Tensor], lang_tokens: Tensor,
                       lang_masks: Tensor, state: Tensor, noise: Tensor | None = None,
                       num_steps: int | None = None, use_cache: bool = True,
                       prev_chunk_left_over: Tensor | None = None,
                       inference_delay: int | None = None) -> Tensor:
        """Sample a chunk [B, chunk_size, max_action_dim] (float32, NORMALIZED, padded units).

        use_cache=False recomputes the whole prefix through the VLM at every step (the naive
        reference for speed ratios and a debugging aid; same math).
        Real-time chunking runs when `prev_chunk_left_over` [B, n, <= max_action_dim] (normalized,
        padded units) is given: with `config.rtc_config` if set, else RTCConfig() defaults; a
        config whose rtc_config has enabled=False ignores the left-over (logged). RTC needs
        `inference_delay`; its guidance is LeRobot's closed form (rtc.py), so it needs no
        autograd and runs under torch.inference_mode too.
        """
        self._check_inputs(images, img_masks, lang_tokens, lang_masks, state)
        cfg = self.config
        bsize = state.shape[0]
        shape = (bsize, cfg.chunk_size, cfg.max_action_dim)
        if noise is None:
            noise = sample_noise(shape, state.device)
        elif tuple(noise.shape) != shape:
            raise ModelInputError(f'noise must be {list(shape)}, got {list(noise.shape)}')
        num_steps = cfg.num_steps if num_steps is None else num_steps
        prefix = self.embed_prefix(images, img_masks, lang_tokens, lang_masks, state)
        if use_cache:
            cache = self.fill_prefix_cache(prefix)
            prefix_pad = prefix[1]
            layout = self.suffix_layout(prefix_pad)  # the same for every step: built once

            def denoise_fn(x_t: Tensor, t: Tensor) -> Tensor:
                return self.denoise_step(prefix_pad, cache, x_t, t, layout)
        else:
            def denoise_fn(x_t: Tensor, t: Tensor) -> Tensor:
                return self._full_velocity(prefix, x_t, t)

        rtc = self._rtc_settings(prev_chunk_left_over)
        if rtc is not None:
            if prev_chunk_left_over.shape[0] != bsize:
                raise ModelInputError(f'prev_chunk_left_over has batch '
                                      f'{prev_chunk_left_over.shape[0]}, expected {bsize}')
            denoise_fn = make_guided_denoise_fn(denoise_fn, prev_chunk_left_over.to(noise.device),
                                                inference_delay, rtc)
        return euler_integrate(denoise_fn, noise.to(torch.float32), num_steps)

    def _rtc_settings(self, prev_chunk_left_over: Tensor | None) -> RTCConfig | None:
        if prev_chunk_left_over is None:
            return None
        rtc = self.config.rtc_config or RTCConfig()
        if not rtc.enabled:
            logger.info('prev_chunk_left_over given, rtc_config.enabled is false: plain sampling')
            return None
        return rtc

    def fill_prefix_cache(self, prefix: tuple[Tensor, Tensor, Tensor]) -> PrefixKVCache:
        """Run the prefix once through the VLM and keep every layer's post-RoPE K/V."""
        prefix_embs, prefix_pad, prefix_ar = prefix
        att_2d = make_att_2d_masks(prefix_pad, prefix_ar)  # [B, P, P]
        position_ids = torch.cumsum(prefix_pad, dim=1) - 1
        _, _, cache = self.vlm_with_expert(prefix_embs, None, att_2d, position_ids,
                                           fill_kv_cache=True)
        return cache

    def suffix_layout(self, prefix_pad: Tensor,
                      s_len: int | None = None) -> tuple[Tensor, Tensor]:
        """The attention mask [B, T, P + T] and positions [B, T] of a denoising step's suffix.

        The suffix is chunk_size valid tokens, each starting a causal block (ar flag 1), so both
        depend on the prefix's padding alone: the sampler builds them once per chunk. `s_len`:
        the suffix length T (default chunk_size).
        """
        bsize, p_len = prefix_pad.shape
        s_len = self.config.chunk_size if s_len is None else s_len
        suffix_pad = torch.ones(bsize, s_len, dtype=torch.bool, device=prefix_pad.device)
        suffix_ar = torch.ones(bsize, s_len, dtype=torch.int64, device=prefix_pad.device)
        prefix_2d = prefix_pad[:, None, :].expand(bsize, s_len, p_len)  # [B, T, P]
        suffix_2d = make_att_2d_masks(suffix_pad, suffix_ar)  # [B, T, T]
        att_2d = torch.cat([prefix_2d, suffix_2d], dim=2)  # [B, T, P + T]
        offsets = prefix_pad.sum(dim=-1)[:, None]  # [B, 1] valid prefix tokens
        position_ids = offsets + torch.cumsum(suffix_pad, dim=1) - 1  # [B, T]
        return att_2d, position_ids

    def denoise_step(self, prefix_pad: Tensor, cache: PrefixKVCache, x_t: Tensor,
                     time: Tensor, layout: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Velocity v(x_t, t) [B, T, A] for one Euler step against the cached prefix.

        `layout`: suffix_layout(prefix_pad), passed by the sampler so that the step does not
        rebuild it; computed here when omitted.
        """
        suffix_embs = self.embed_suffix(x_t, time)[0]
        if layout is None:
            layout = self.suffix_layout(prefix_pad, x_t.shape[1])
        att_2d, position_ids = layout
        _, suffix_out, _ = self.vlm_with_expert(None, suffix_embs, att_2d, position_ids,
                                                past_kv=cache)
        return self._velocity(suffix_out)

    # --- input checks ---
    def _check_inputs(self, images: list[Tensor], img_masks: list[Tensor], lang_tokens: Tensor,
                      lang_masks: Tensor, state: Tensor) -> None:
        cfg = self.config
        if state.dim() != 2 or state.shape[1] != cfg.max_state_dim:
            raise ModelInputError(f'state must be [B, max_state_dim={cfg.max_state_dim}] '
                                  f'(zero-padded), got {list(state.shape)}')
        bsize = state.shape[0]
        if not images:
            raise ModelInputError('at least one image is needed')
        if len(images) != len(img_masks):
            raise ModelInputError(f'{len(images)} images but {len(img_masks)} image masks')
        for k, (img, mask) in enumerate(zip(images, img_masks, strict=True)):
            if img.dim() != 4 or img.shape[0] != bsize or img.shape[1] != 3:
                raise ModelInputError(f'image {k} must be [B={bsize}, 3, H, W], got '
                                      f'{list(img.shape)}')
            if tuple(mask.shape) != (bsize,) or mask.dtype != torch.bool:
                raise ModelInputError(f'image mask {k} must be a bool [B={bsize}], got '
                                      f'{mask.dtype} {list(mask.shape)}')
        if lang_tokens.dim() != 2 or lang_tokens.shape[0] != bsize:
            raise ModelInputError(f'lang_tokens must be [B={bsize}, L], got '
                                  f'{list(lang_tokens.shape)}')
        if lang_tokens.dtype not in (torch.int64, torch.int32):
            raise ModelInputError(f'lang_tokens must be integer ids, got {lang_tokens.dtype}')
        if tuple(lang_masks.shape) != tuple(lang_tokens.shape) or lang_masks.dtype != torch.bool:
            raise ModelInputError(f'lang_masks must be bool {list(lang_tokens.shape)}, got '
                                  f'{lang_masks.dtype} {list(lang_masks.shape)}')
