"""The SmolVLM backbone paired layer by layer with SmolVLA's action expert.

LeRobot's `SmolVLMWithExpertModel` (docs/lerobot_compat.md, "Model structure" and "Layers and
attention").

transformers provides the modules (vision tower, connector, Llama decoder layers and norms) and so
the parameter names; the layer loop that pairs the two streams is ours:

    prefix: images, language, state   (width Dv = 960)      suffix: noisy actions + time (De = 720)
            │                                                        │
    VLM layer i ─ self-attention layer (i % n == 0): one attention over [prefix ; suffix] ─ expert
            │     cross-attention layer (otherwise): prefix attends itself; the suffix     layer j
            │     queries the VLM layer's post-RoPE prefix K/V through the expert's k/v_proj
            ▼                                                        ▼
    text_model.norm                                          lm_expert.norm

At inference the prefix runs once and its per-layer K/V are cached (`PrefixKVCache`); each denoising
step then runs only the suffix against the cache. RoPE is SmolVLA's own (base 10000, split-half).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
import math

import torch
from torch import Tensor, nn

ROPE_BASE = 10_000.0
ATTENTION_BACKENDS = ('eager', 'sdpa')


def apply_rope(x: Tensor, positions: Tensor, base: float = ROPE_BASE) -> Tensor:
    """Rotate x [B, L, H, d] by positions [B, L] (split-half pairs i <-> i + d/2), in float32."""
    d_half = x.shape[-1] // 2
    exponents = (2.0 / x.shape[-1]) * torch.arange(d_half, dtype=torch.float32, device=x.device)
    timescale = base ** exponents  # [d/2]
    radians = positions.to(torch.float32)[..., None] / timescale  # [B, L, d/2]
    sin = torch.sin(radians)[:, :, None, :]  # [B, L, 1, d/2]
    cos = torch.cos(radians)[:, :, None, :]
    xf = x.to(torch.float32)
    x1, x2 = xf[..., :d_half], xf[..., d_half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """Apply a Linear in its own dtype (checkpoints mix bf16 and fp32 weights).

    docs/lerobot_compat.md, "Dtypes".
    """
    return layer(x.to(layer.weight.dtype))


@dataclass
class PrefixKVCache:
    """Post-RoPE keys and values of the prefix, per VLM layer, [B, P, Hk, d] each.

    Nothing in it changes between denoising steps, so it also keeps, per layer, what every step
    would otherwise recompute: `expanded[i]` = (K, V) repeated to all query heads, [B, H, P, d]
    (K in float32 for the eager kernel), for self-attention layers the VLM's own, for
    cross-attention layers those projected by the expert's k/v_proj.
    """

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    expanded: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)

    @property
    def prefix_len(self) -> int:
        return self.keys[0].shape[1]


class SmolVLMWithExpertModel(nn.Module):
    """SmolVLM (`vlm`) cut to `num_vlm_layers` text layers, plus the action expert (`lm_expert`).

    Parameter names match LeRobot's `vlm_with_expert.*` (docs/lerobot_compat.md,
    "Checkpoint files and keys"). Call `forward` in one of
    three ways: prefix + suffix without cache (training, the naive sampler), prefix only with
    `fill_kv_cache=True` (inference prefill), or suffix only with `past_kv` (a denoising step).
    """

    def __init__(self, vlm_config, num_vlm_layers: int = 16, num_expert_layers: int = -1,
                 self_attn_every_n_layers: int = 2, attention_mode: str = 'cross_attn',
                 expert_width_multiplier: float = 0.75, freeze_vision_encoder: bool = True,
                 train_expert_only: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel, SmolVLMForConditionalGeneration

        self.vlm = SmolVLMForConditionalGeneration(vlm_config)
        text = self.vlm.model.text_model
        if num_vlm_layers > 0:
            if num_vlm_layers > len(text.layers):
                raise ValueError(f'num_vlm_layers={num_vlm_layers} but the VLM has only '
                                 f'{len(text.layers)} text layers')
            text.layers = text.layers[:num_vlm_layers]
        self.num_vlm_layers = len(text.layers)
        tcfg = vlm_config.text_config
        self.num_heads = tcfg.num_attention_heads
        self.num_kv_heads = tcfg.num_key_value_heads
        self.head_dim = getattr(tcfg, 'head_dim', None) or tcfg.hidden_size // self.num_heads
        self.vlm_hidden = tcfg.hidden_size

        expert_cfg = copy.deepcopy(tcfg)
        hidden = int(tcfg.hidden_size * expert_width_multiplier)
        expert_cfg.hidden_size = hidden
        expert_cfg.intermediate_size = _round_up(4 * int(2 * hidden / 3), 256)
        expert_cfg.head_dim = self.head_dim
        n_expert = num_expert_layers if num_expert_layers > 0 else self.num_vlm_layers
        if self.num_vlm_layers % n_expert:
            raise ValueError(f'num_expert_layers={n_expert} must divide the number of VLM layers '
                             f'({self.num_vlm_layers})')
        expert_cfg.num_hidden_layers = n_expert
        self.lm_expert = AutoModel.from_config(expert_cfg)
        self.lm_expert.embed_tokens = None
        self.expert_hidden = hidden
        self.num_expert_layers = n_expert
        self.multiple_of = self.num_vlm_layers // n_expert
        self.self_attn_every_n_layers = self_attn_every_n_layers
        self.attention_mode = attention_mode
        self.cross = 'cross' in attention_mode
        kv_width = self.num_kv_heads * self.head_dim
        if self.cross:
            for j, layer in enumerate(self.lm_expert.layers):
                if j % self_attn_every_n_layers != 0:
                    # Cross-attention layers read VLM K/V (Hk*d wide) instead of expert hidden.
                    layer.self_attn.k_proj = nn.Linear(kv_width, kv_width, bias=False)
                    layer.self_attn.v_proj = nn.Linear(kv_width, kv_width, bias=False)
        for i in range(self.num_vlm_layers):
            j = self._expert_index(i)
            if j is not None and self._is_cross(i) != self._is_cross(j):
                raise ValueError(
                    f'VLM layer {i} ({"cross" if self._is_cross(i) else "self"}-attention) would '
                    f'pair with expert layer {j} of the other kind; choose num_expert_layers and '
                    'self_attn_every_n_layers so that the layer kinds line up')
        self.freeze_vision_encoder = freeze_vision_encoder
        self.train_expert_only = train_expert_only
        self.attention_backend = 'eager'
        self.set_requires_grad()

    # --- structure ---
    def _is_cross(self, layer_idx: int) -> bool:
        return self.cross and layer_idx % self.self_attn_every_n_layers != 0

    def _expert_index(self, vlm_layer: int) -> int | None:
        """The expert layer paired with VLM layer i, or None (the suffix skips that layer)."""
        if vlm_layer % self.multiple_of:
            return None
        return vlm_layer // self.multiple_of

    def set_attention_backend(self, backend: str) -> None:
        """'eager' (LeRobot's math: fp32 logits and softmax) or 'sdpa' (torch's fused kernel)."""
        if backend not in ATTENTION_BACKENDS:
            raise ValueError(
                f'attention backend must be one of {ATTENTION_BACKENDS}, got {backend!r}')
        self.attention_backend = backend

    def set_requires_grad(self) -> None:
        """Freeze as LeRobot does so optimizers and DDP see the right parameters.

        docs/lerobot_compat.md, "What training updates".
        """
        if self.freeze_vision_encoder:
            for p in self.vlm.model.vision_model.parameters():
                p.requires_grad_(False)
        if self.train_expert_only:
            for p in self.vlm.parameters():
                p.requires_grad_(False)
        else:
            text = self.vlm.model.text_model
            frozen = [self.vlm.lm_head, text.norm, text.layers[-1]]
            if self.num_expert_layers < self.num_vlm_layers and self.num_vlm_layers >= 2:
                frozen.append(text.layers[-2])
            for module in frozen:
                for p in module.parameters():
                    p.requires_grad_(False)

    def train(self, mode: bool = True) -> SmolVLMWithExpertModel:
        """Keep frozen parts in eval mode when training (as LeRobot)."""
        super().train(mode)
        if self.freeze_vision_encoder:
            self.vlm.model.vision_model.eval()
        if self.train_expert_only:
            self.vlm.eval()
        return self

    # --- embeddings ---
    def embed_image(self, images: Tensor) -> Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> visual tokens [N, T, Dv] (vision tower + connector)."""
        vision = self.vlm.model.vision_model
        dtype = vision.embeddings.patch_embedding.weight.dtype
        hidden = vision(pixel_values=images.to(dtype)).last_hidden_state  # [N, patches, Dvis]
        return self.vlm.model.connector(hidden)  # [N, patches / s^2, Dv]

    def embed_language_tokens(self, tokens: Tensor) -> Tensor:
        """Token ids [B, L] -> embeddings [B, L, Dv] (unscaled)."""
        return self.vlm.model.text_model.embed_tokens(tokens)

    # --- the layer loop ---
    def forward(self, prefix_embs: Tensor | None, suffix_embs: Tensor | None,
                attention_mask: Tensor, position_ids: Tensor,
                past_kv: PrefixKVCache | None = None,
                fill_kv_cache: bool = False) -> tuple[Tensor | None, Tensor | None,
                                                      PrefixKVCache | None]:
        """Run the paired layers -> (prefix_out, suffix_out, cache); outputs after final norms.

        prefix_embs [B, P, Dv] and/or suffix_embs [B, S, De]. attention_mask [B, Lq, Lk] bool is
        query x key over the present tokens (Lq = P + S) or, with `past_kv`, over cache + suffix
        (Lq = S, Lk = P + S). position_ids [B, Lq] are the positions of the present tokens.
        """
        if fill_kv_cache and (prefix_embs is None or suffix_embs is not None):
            raise ValueError('fill_kv_cache needs the prefix alone')
        if past_kv is not None and (prefix_embs is not None or suffix_embs is None):
            raise ValueError('a cached step takes the suffix alone')
        cache = PrefixKVCache() if fill_kv_cache else None
        prefix, suffix = prefix_embs, suffix_embs
        p_len = prefix.shape[1] if prefix is not None else 0
        s_len = suffix.shape[1] if suffix is not None else 0
        cached_len = past_kv.prefix_len if past_kv is not None else 0
        vlm_layers = self.vlm.model.text_model.layers
        for i in range(self.num_vlm_layers):
            j = self._expert_index(i)
            expert_layer = self.lm_expert.layers[j] if j is not None else None
            if not fill_kv_cache and self._is_cross(i):
                prefix, suffix = self._cross_layer(
                    i, vlm_layers[i], expert_layer, prefix, suffix, attention_mask, position_ids,
                    p_len, past_kv)
            else:
                prefix, suffix = self._joint_layer(
                    i, vlm_layers[i], expert_layer, prefix, suffix, attention_mask, position_ids,
                    p_len, s_len, cached_len, past_kv, cache)
        if cache is not None:
            self._project_cross_kv(cache)
        prefix_out = self.vlm.model.text_model.norm(prefix) if prefix is not None else None
        suffix_out = self.lm_expert.norm(suffix) if suffix is not None else None
        return prefix_out, suffix_out, cache

    def _qkv(self, layer: nn.Module, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normed hidden [B, L, D] -> q [B, L, H, d], k and v [B, L, Hk, d]."""
        attn = layer.self_attn
        b, n, _ = h.shape
        q = _linear(attn.q_proj, h).view(b, n, self.num_heads, self.head_dim)
        k = _linear(attn.k_proj, h).view(b, n, self.num_kv_heads, self.head_dim)
        v = _linear(attn.v_proj, h).view(b, n, self.num_kv_heads, self.head_dim)
        return q, k, v

    def _finish(self, layer: nn.Module, residual: Tensor, att: Tensor) -> Tensor:
        """o_proj + residual, then the SwiGLU MLP block with its residual.

        The stream takes o_proj's dtype after the first add, as in LeRobot (docs/lerobot_compat.md,
        "Dtypes").
        """
        h = _linear(layer.self_attn.o_proj, att)
        h = h + residual.to(h.dtype)
        return h + _linear_mlp(layer.mlp, layer.post_attention_layernorm(h)).to(h.dtype)

    def _joint_layer(self, i, vlm_layer, expert_layer, prefix, suffix, mask, positions, p_len,
                     s_len, cached_len, past_kv, cache):
        """Self-attention over [prefix ; suffix] (and the cached prefix), each with its weights."""
        streams = []  # (name, layer, hidden); present tokens are contiguous: prefix, then suffix
        if prefix is not None:
            streams.append(('p', vlm_layer, prefix))
        if suffix is not None and expert_layer is not None:
            streams.append(('s', expert_layer, suffix))
        if not streams:
            return prefix, suffix
        start = 0 if prefix is not None else p_len
        stop = p_len + s_len if streams[-1][0] == 's' else p_len
        qs, ks, vs = [], [], []
        for _, layer, h in streams:
            q, k, v = self._qkv(layer, layer.input_layernorm(h))
            qs.append(q)
            ks.append(k)
            vs.append(v)
        q = _cat_seq(qs)  # [B, Lq, H, d]
        k = _cat_seq(ks)  # [B, Lq, Hk, d]
        v = _cat_seq(vs)  # [B, Lq, Hk, d]
        pos = positions[:, start:stop]  # [B, Lq]
        q = apply_rope(q, pos)
        k = apply_rope(k, pos)
        if cache is not None:
            cache.keys.append(k)
            cache.values.append(v)
        if past_kv is not None:
            # [B, S, P + S]: the cached prefix columns, then the suffix's own
            att = self._attend(q, k, v, mask, prefix_kv=past_kv.expanded[i])  # [B, S, H*d]
        else:
            att = self._attend(q, k, v, mask[:, start:stop, start:stop])  # [B, Lq, H*d]
        out = {'p': prefix, 's': suffix}
        offset = 0
        for name, layer, h in streams:
            n = h.shape[1]
            out[name] = self._finish(layer, h, att[:, offset:offset + n])
            offset += n
        return out['p'], out['s']

    def _cross_layer(self, i, vlm_layer, expert_layer, prefix, suffix, mask, positions, p_len,
                     past_kv):
        """Prefix self-attention; the suffix attends the (projected) prefix K/V of this layer."""
        prefix_k = prefix_v = None
        if prefix is not None:
            q, k, v = self._qkv(vlm_layer, vlm_layer.input_layernorm(prefix))
            pos = positions[:, :p_len]
            q, prefix_k, prefix_v = apply_rope(q, pos), apply_rope(k, pos), v
            att = self._attend(q, prefix_k, prefix_v, mask[:, :p_len, :p_len])
            prefix = self._finish(vlm_layer, prefix, att)
        if suffix is None or expert_layer is None:
            return prefix, suffix
        s_len = suffix.shape[1]
        h = expert_layer.input_layernorm(suffix)
        b = h.shape[0]
        q = _linear(expert_layer.self_attn.q_proj, h).view(b, s_len, self.num_heads, self.head_dim)
        pos = positions[:, -s_len:]
        q = apply_rope(q, pos - pos.min(dim=1, keepdim=True).values)  # positions restart at 0
        if past_kv is not None:
            att = self._attend(q, None, None, mask[:, -s_len:, :past_kv.prefix_len],
                               prefix_kv=past_kv.expanded[i])
        else:
            ck, cv = self._cross_kv(expert_layer, prefix_k, prefix_v)
            att = self._attend(q, ck, cv, mask[:, -s_len:, :p_len])
        return prefix, self._finish(expert_layer, suffix, att)

    def _cross_kv(self, expert_layer: nn.Module, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """VLM post-RoPE K and V [B, P, Hk, d] -> expert K/V via its [Hk*d, Hk*d] projections."""
        b, p = k.shape[:2]
        attn = expert_layer.self_attn
        ck = _linear(attn.k_proj, k.reshape(b, p, -1)).view(b, p, self.num_kv_heads, self.head_dim)
        cv = _linear(attn.v_proj, v.reshape(b, p, -1)).view(b, p, self.num_kv_heads, self.head_dim)
        return ck, cv

    def _project_cross_kv(self, cache: PrefixKVCache) -> None:
        """Fill `cache.expanded` for every layer that a denoising step will run."""
        for i in range(self.num_vlm_layers):
            j = self._expert_index(i)
            if j is None:
                continue
            k, v = cache.keys[i], cache.values[i]
            if self._is_cross(i):
                k, v = self._cross_kv(self.lm_expert.layers[j], k, v)
            cache.expanded[i] = (self._expand_heads(k, torch.float32), self._expand_heads(v))

    def _expand_heads(self, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """[B, L, Hk, d] -> [B, H, L, d]: query head h reads KV head h // (H / Hk)."""
        groups = self.num_heads // self.num_kv_heads
        x = x.repeat_interleave(groups, dim=2).transpose(1, 2)
        return x.to(dtype) if dtype is not None else x

    def _attend(self, q: Tensor, k: Tensor | None, v: Tensor | None, mask: Tensor,
                prefix_kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Masked GQA attention -> [B, Lq, H*d].

        q [B, Lq, H, d]; k, v [B, Lk, Hk, d] (or None); prefix_kv: cached (K, V) already expanded
        to [B, H, P, d], placed before k/v; mask [B, Lq, P + Lk]. 'eager' follows LeRobot: fp32
        logits scaled by d^-0.5, masked to finfo(fp32).min, fp32 softmax, probabilities cast to
        V's dtype. Fully masked rows (padding queries) stay finite.
        """
        b, lq = q.shape[:2]
        keys, values = [], []
        if prefix_kv is not None:
            keys.append(prefix_kv[0])
            values.append(prefix_kv[1])
        if k is not None:
            keys.append(self._expand_heads(k))  # [B, H, Lk, d]
            values.append(self._expand_heads(v))
        q = q.transpose(1, 2)  # [B, H, Lq, d]
        if self.attention_backend == 'sdpa':
            key = torch.cat([t.to(q.dtype) for t in keys], dim=2)
            value = torch.cat([t.to(q.dtype) for t in values], dim=2)
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~mask, torch.finfo(q.dtype).min)[:, None]  # [B, 1, Lq, Lk]
            out = nn.functional.scaled_dot_product_attention(q, key, value, attn_mask=bias)
        else:
            qf = q.to(torch.float32) * (self.head_dim ** -0.5)
            parts = [torch.matmul(qf, t.to(torch.float32).transpose(2, 3)) for t in keys]
            scores = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # [B,H,Lq,P+Lk]
            scores = scores.masked_fill(~mask[:, None], torch.finfo(torch.float32).min)
            probs = torch.softmax(scores, dim=-1)
            out, offset = None, 0
            for value in values:  # P @ V in parts, without concatenating the cached values
                n = value.shape[2]
                part = torch.matmul(probs[..., offset:offset + n].to(value.dtype), value)
                out = part if out is None else out + part
                offset += n  # [B, H, Lq, d]
        return out.transpose(1, 2).reshape(b, lq, self.num_heads * self.head_dim)


def _cat_seq(parts: list[Tensor]) -> Tensor:
    """Concatenate streams along the sequence (dim 1) in the first one's dtype."""
    if len(parts) == 1:
        return parts[0]
    return torch.cat([t.to(parts[0].dtype) for t in parts], dim=1)


def _linear_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """SwiGLU: down(silu(gate(x)) * up(x)), each Linear in its own dtype."""
    return _linear(mlp.down_proj, nn.functional.silu(_linear(mlp.gate_proj, x))
                   * _linear(mlp.up_proj, x))


def _round_up(x: int, multiple: int) -> int:
    return int(math.ceil(x / multiple) * multiple)
