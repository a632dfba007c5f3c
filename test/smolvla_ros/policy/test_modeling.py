"""VLAFlowMatching on the tiny preset against a plain reference written here.

The reference below re-derives SmolVLA's math from docs/lerobot_compat.md (its sections "Prefix,
suffix, masks and positions" to "Sampler") as straightforward loops over the model's weights: no KV
cache, explicit masks from the cumsum rule, RoPE base 10000, sqrt(hidden) scaling, interleaved
self/cross-attention layers. Only the vision tower and connector are called as modules (they are
transformers' code, not ours).
"""
from __future__ import annotations

import dataclasses
import math

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy.configuration_smolvla import SmolVLAConfig  # noqa: E402
from smolvla_ros.policy.modeling_smolvla import ModelInputError, VLAFlowMatching  # noqa: E402

F = torch.nn.functional
B = 2


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Larger-than-default random weights so every path (masks, RoPE, CA) visibly matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('layernorm.weight') or name.endswith('norm.weight'):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


@pytest.fixture(scope='module')
def tiny() -> VLAFlowMatching:
    torch.manual_seed(0)
    model = VLAFlowMatching(SmolVLAConfig.preset('tiny')).eval()
    _randomize(model)
    return model


def _inputs(cfg: SmolVLAConfig, seed: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed)
    size = cfg.resize_imgs_with_padding[0]
    images = [torch.rand(B, 3, size, size, generator=gen) * 2 - 1 for _ in cfg.image_features]
    img_masks = [torch.ones(B, dtype=torch.bool) for _ in images]
    img_masks[1][1] = False  # sample 1 lacks its second camera
    length = cfg.tokenizer_max_length
    tokens = torch.randint(0, 250, (B, length), generator=gen)
    lang_masks = torch.ones(B, length, dtype=torch.bool)
    lang_masks[0, 5:] = False  # right padding of different lengths
    lang_masks[1, 11:] = False
    state = torch.randn(B, cfg.max_state_dim, generator=gen)
    return {'images': images, 'img_masks': img_masks, 'lang_tokens': tokens,
            'lang_masks': lang_masks, 'state': state}


# ---------------------------------------------------------------------------------------------
# The reference, deliberately naive.
# ---------------------------------------------------------------------------------------------
def _rms(x, w, eps=1e-5):
    x32 = x.float()
    return x32 / torch.sqrt((x32 * x32).mean(-1, keepdim=True) + eps) * w


def _rope(x, pos):
    """x [L, H, d], pos [L]: pairs (i, i + d/2) rotated by pos / 10000^(2i/d)."""
    d = x.shape[-1]
    out = torch.empty_like(x)
    for i in range(d // 2):
        angle = pos.float() / (10000.0 ** (2 * i / d))  # [L]
        c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        a, b = x[..., i], x[..., i + d // 2]
        out[..., i] = a * c - b * s
        out[..., i + d // 2] = b * c + a * s
    return out


def _attention(q, k, v, allowed):
    """q [Lq, H, d], k/v [Lk, Hk, d], allowed [Lq, Lk] -> [Lq, H*d]; KV head of h is h // (H/Hk)."""
    heads, kv_heads, d = q.shape[1], k.shape[1], q.shape[2]
    outs = []
    for h in range(heads):
        kh = h // (heads // kv_heads)
        scores = q[:, h] @ k[:, kh].T / math.sqrt(d)
        scores = scores.masked_fill(~allowed, -1e30)
        outs.append(torch.softmax(scores, -1) @ v[:, kh])
    return torch.cat(outs, dim=-1)


def _mlp(layer, x):
    m = layer.mlp
    return F.linear(F.silu(F.linear(x, m.gate_proj.weight)) * F.linear(x, m.up_proj.weight),
                    m.down_proj.weight)


def _ref_prefix(model, images, img_masks, lang_tokens, lang_masks, state):
    """Per sample: prefix embeddings [P, Dv], valid [P], block id [P] (images/lang 0, state 1)."""
    vlm = model.vlm_with_expert.vlm.model
    dv = vlm.text_model.embed_tokens.weight.shape[1]
    img_embs = [vlm.connector(vlm.vision_model(pixel_values=img).last_hidden_state) * math.sqrt(dv)
                for img in images]
    out = []
    for b in range(state.shape[0]):
        parts, valid = [], []
        for emb, mask in zip(img_embs, img_masks, strict=True):
            parts.append(emb[b])
            valid += [bool(mask[b])] * emb.shape[1]
        parts.append(vlm.text_model.embed_tokens.weight[lang_tokens[b]] * math.sqrt(dv))
        valid += lang_masks[b].tolist()
        parts.append((F.linear(state[b], model.state_proj.weight, model.state_proj.bias))[None])
        valid.append(True)
        blocks = [0] * (len(valid) - 1) + [1]
        out.append((torch.cat(parts), torch.tensor(valid), torch.tensor(blocks)))
    return out


def _ref_suffix(model, x_t, t, cfg):
    """x_t [T, A], t float -> suffix embeddings [T, De]."""
    de = model.action_in_proj.weight.shape[0]
    fraction = torch.linspace(0, 1, de // 2, dtype=torch.float64)
    period = cfg.min_period * (cfg.max_period / cfg.min_period) ** fraction
    angle = 2 * math.pi * t / period
    time_emb = torch.cat([torch.sin(angle), torch.cos(angle)]).float()  # [De]
    act = F.linear(x_t, model.action_in_proj.weight, model.action_in_proj.bias)
    h = torch.cat([act, time_emb[None].expand(act.shape[0], -1)], dim=-1)
    h = F.silu(F.linear(h, model.action_time_mlp_in.weight, model.action_time_mlp_in.bias))
    return F.linear(h, model.action_time_mlp_out.weight, model.action_time_mlp_out.bias)


def _ref_velocity(model, prefix, x_t, t, cfg):
    """One full pass over [prefix ; suffix] for one sample -> velocity [T, A]."""
    vwe = model.vlm_with_expert
    vlm_layers = vwe.vlm.model.text_model.layers
    exp_layers = vwe.lm_expert.layers
    heads, kv_heads, d = vwe.num_heads, vwe.num_kv_heads, vwe.head_dim
    p_emb, p_valid, p_block = prefix
    s_emb = _ref_suffix(model, x_t, t, cfg)
    n_p, n_s = p_emb.shape[0], s_emb.shape[0]
    valid = torch.cat([p_valid, torch.ones(n_s, dtype=torch.bool)])
    block = torch.cat([p_block, p_block.max() + torch.arange(1, n_s + 1)])  # one step per action
    allowed = (block[None, :] <= block[:, None]) & valid[None, :] & valid[:, None]
    pos = torch.cumsum(valid.long(), 0) - 1
    hp, hs = p_emb.float(), s_emb.float()
    for i, (vl, el) in enumerate(zip(vlm_layers, exp_layers, strict=True)):
        xp = _rms(hp, vl.input_layernorm.weight)
        xs = _rms(hs, el.input_layernorm.weight)
        qp = F.linear(xp, vl.self_attn.q_proj.weight).view(n_p, heads, d)
        kp = F.linear(xp, vl.self_attn.k_proj.weight).view(n_p, kv_heads, d)
        vp = F.linear(xp, vl.self_attn.v_proj.weight).view(n_p, kv_heads, d)
        qp, kp = _rope(qp, pos[:n_p]), _rope(kp, pos[:n_p])
        qs = F.linear(xs, el.self_attn.q_proj.weight).view(n_s, heads, d)
        if i % cfg.self_attn_every_n_layers == 0:  # joint self-attention layer
            ks = F.linear(xs, el.self_attn.k_proj.weight).view(n_s, kv_heads, d)
            vs = F.linear(xs, el.self_attn.v_proj.weight).view(n_s, kv_heads, d)
            qs, ks = _rope(qs, pos[n_p:]), _rope(ks, pos[n_p:])
            att = _attention(torch.cat([qp, qs]), torch.cat([kp, ks]), torch.cat([vp, vs]),
                             allowed)
            att_p, att_s = att[:n_p], att[n_p:]
        else:  # cross-attention layer
            att_p = _attention(qp, kp, vp, allowed[:n_p, :n_p])
            kx = F.linear(kp.reshape(n_p, -1), el.self_attn.k_proj.weight).view(n_p, kv_heads, d)
            vx = F.linear(vp.reshape(n_p, -1), el.self_attn.v_proj.weight).view(n_p, kv_heads, d)
            qs = _rope(qs, torch.arange(n_s))
            att_s = _attention(qs, kx, vx, p_valid[None, :].expand(n_s, n_p))
        hp = hp + F.linear(att_p, vl.self_attn.o_proj.weight)
        hp = hp + _mlp(vl, _rms(hp, vl.post_attention_layernorm.weight))
        hs = hs + F.linear(att_s, el.self_attn.o_proj.weight)
        hs = hs + _mlp(el, _rms(hs, el.post_attention_layernorm.weight))
    out = _rms(hs, vwe.lm_expert.norm.weight)
    return F.linear(out, model.action_out_proj.weight, model.action_out_proj.bias)


def _ref_sample(model, inputs, noise, cfg):
    prefixes = _ref_prefix(model, **inputs)
    x = noise.clone()
    dt = -1.0 / cfg.num_steps
    for step in range(cfg.num_steps):
        t = 1.0 + step * dt
        v = torch.stack([_ref_velocity(model, prefixes[b], x[b], t, cfg) for b in range(B)])
        x = x + dt * v
    return x


# ---------------------------------------------------------------------------------------------
def test_cached_sampling_matches_plain_reference(tiny):
    cfg = tiny.config
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim, generator=torch.Generator()
                        .manual_seed(3))
    with torch.no_grad():
        cached = tiny.sample_actions(**inputs, noise=noise)
        naive = tiny.sample_actions(**inputs, noise=noise, use_cache=False)
        reference = _ref_sample(tiny, inputs, noise, cfg)
    assert cached.shape == (B, cfg.chunk_size, cfg.max_action_dim)
    assert cached.dtype == torch.float32
    # the model must have done something beyond returning noise
    assert (cached - noise).abs().max() > 0.1
    torch.testing.assert_close(cached, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(naive, reference, rtol=1e-4, atol=1e-4)


def test_training_loss_matches_reference(tiny):
    cfg = tiny.config
    inputs = _inputs(cfg, seed=5)
    gen = torch.Generator().manual_seed(7)
    actions = torch.randn(B, cfg.chunk_size, cfg.max_action_dim, generator=gen)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim, generator=gen)
    time = torch.tensor([0.3, 0.85])
    with torch.no_grad():
        losses = tiny(**inputs, actions=actions, noise=noise, time=time)
        prefixes = _ref_prefix(tiny, **inputs)
        expected = []
        for b in range(B):
            x_t = time[b] * noise[b] + (1 - time[b]) * actions[b]
            v = _ref_velocity(tiny, prefixes[b], x_t, float(time[b]), cfg)
            expected.append((noise[b] - actions[b] - v) ** 2)
    assert losses.shape == (B, cfg.chunk_size, cfg.max_action_dim)
    torch.testing.assert_close(losses, torch.stack(expected), rtol=1e-4, atol=1e-4)


def test_padding_tokens_do_not_change_the_chunk(tiny):
    """Padded language tokens (mask False) are invisible: their ids must not matter."""
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    other = dict(inputs)
    tokens = inputs['lang_tokens'].clone()
    tokens[~inputs['lang_masks']] = 7
    other['lang_tokens'] = tokens
    with torch.no_grad():
        a = tiny.sample_actions(**inputs, noise=noise, num_steps=3)
        b = tiny.sample_actions(**other, noise=noise, num_steps=3)
        tokens[0, 0] = 9  # a real token does matter
        c = tiny.sample_actions(**other, noise=noise, num_steps=3)
    torch.testing.assert_close(a, b)
    assert (a[0] - c[0]).abs().max() > 1e-4


def test_determinism_with_fixed_noise(tiny):
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    with torch.no_grad():
        a = tiny.sample_actions(**inputs, noise=noise)
        b = tiny.sample_actions(**inputs, noise=noise.clone())
        c = tiny.sample_actions(**inputs, noise=torch.randn_like(noise))
        torch.manual_seed(11)
        d = tiny.sample_actions(**inputs)
        torch.manual_seed(11)
        e = tiny.sample_actions(**inputs)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(d, e)


def test_num_steps_override_changes_the_integration(tiny):
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    with torch.no_grad():
        one = tiny.sample_actions(**inputs, noise=noise, num_steps=1)
        v = tiny.denoise_step(tiny.embed_prefix(**inputs)[1],
                              tiny.fill_prefix_cache(tiny.embed_prefix(**inputs)), noise,
                              torch.ones(B))
    torch.testing.assert_close(one, noise - v)


def test_bad_inputs_raise_specific_errors(tiny):
    cfg = tiny.config
    inputs = _inputs(cfg)
    with pytest.raises(ModelInputError, match='state'):
        tiny.sample_actions(**{**inputs, 'state': torch.zeros(B, 6)})
    with pytest.raises(ModelInputError, match='at least one image'):
        tiny.sample_actions(**{**inputs, 'images': [], 'img_masks': []})
    with pytest.raises(ModelInputError, match='image masks'):
        tiny.sample_actions(**{**inputs, 'img_masks': inputs['img_masks'][:1]})
    with pytest.raises(ModelInputError, match='lang_masks'):
        tiny.sample_actions(**{**inputs, 'lang_masks': inputs['lang_masks'].long()})
    with pytest.raises(ModelInputError, match='noise'):
        tiny.sample_actions(**inputs, noise=torch.zeros(B, 5, cfg.max_action_dim))
    with pytest.raises(ModelInputError, match='actions'):
        tiny(**inputs, actions=torch.zeros(B, cfg.chunk_size, 6))


def test_loss_backpropagates_only_into_trainable_parts():
    """train_expert_only freezes the whole VLM; the expert and projections get gradients."""
    model = VLAFlowMatching(SmolVLAConfig.preset('tiny')).train()
    inputs = _inputs(model.config)
    actions = torch.randn(B, model.config.chunk_size, model.config.max_action_dim)
    model(**inputs, actions=actions).mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None for n, g in grads.items() if n.startswith('vlm_with_expert.vlm.'))
    assert grads['vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight'] is not None
    assert grads['state_proj.weight'] is not None
    assert grads['action_out_proj.weight'].abs().sum() > 0
    assert not model.vlm_with_expert.vlm.training  # frozen parts stay in eval mode


def test_bfloat16_lerobot_dtypes_run_and_stay_close(tiny):
    """LeRobot's mixed layout (bf16 + fp32 projections and CA k/v) runs and tracks fp32."""
    import copy

    model = copy.deepcopy(tiny).to_lerobot_dtypes(torch.bfloat16)
    assert model.action_out_proj.weight.dtype == torch.float32
    assert model.vlm_with_expert.lm_expert.layers[1].self_attn.k_proj.weight.dtype == torch.float32
    assert model.vlm_with_expert.lm_expert.layers[0].self_attn.k_proj.weight.dtype == torch.bfloat16
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    with torch.no_grad():
        ref = tiny.sample_actions(**inputs, noise=noise, num_steps=2)
        out = model.sample_actions(**inputs, noise=noise, num_steps=2)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (out - ref).abs().mean() < 0.1 * ref.abs().mean()


def test_sdpa_backend_matches_eager(tiny):
    inputs = _inputs(tiny.config)
    noise = torch.randn(B, tiny.config.chunk_size, tiny.config.max_action_dim)
    with torch.no_grad():
        eager = tiny.sample_actions(**inputs, noise=noise, num_steps=2)
        tiny.vlm_with_expert.set_attention_backend('sdpa')
        try:
            sdpa = tiny.sample_actions(**inputs, noise=noise, num_steps=2)
        finally:
            tiny.vlm_with_expert.set_attention_backend('eager')
    torch.testing.assert_close(sdpa, eager, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='backend'):
        tiny.vlm_with_expert.set_attention_backend('flash')


def test_shallower_expert_pairs_every_other_vlm_layer():
    """num_expert_layers=2 of 4 VLM layers: sampling with and without the cache still agree."""
    cfg = dataclasses.replace(SmolVLAConfig.preset('tiny'), num_expert_layers=2,
                              self_attn_every_n_layers=1, attention_mode='cross_attn')
    model = VLAFlowMatching(cfg).eval()
    _randomize(model, seed=4)
    assert len(model.vlm_with_expert.lm_expert.layers) == 2
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim)
    with torch.no_grad():
        a = model.sample_actions(**inputs, noise=noise, num_steps=3)
        b = model.sample_actions(**inputs, noise=noise, num_steps=3, use_cache=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_mismatched_layer_kinds_are_rejected():
    cfg = dataclasses.replace(SmolVLAConfig.preset('tiny'), num_expert_layers=2)
    with pytest.raises(ValueError, match='pair with expert layer'):
        VLAFlowMatching(cfg)


def test_load_vlm_weights_from_a_local_smolvlm_directory(tmp_path):
    from transformers import SmolVLMForConditionalGeneration

    from smolvla_ros.policy.modeling_smolvla import VLMWeightsError

    cfg = SmolVLAConfig.preset('tiny')
    torch.manual_seed(3)
    source = SmolVLMForConditionalGeneration(cfg.vlm_config())  # 8 text layers, we keep 4
    source.save_pretrained(tmp_path / 'vlm')
    model = VLAFlowMatching(cfg)
    skipped = model.load_vlm_weights(tmp_path / 'vlm')
    assert len(skipped) == 4 * 9  # layers 4..7, 9 tensors each
    ours = model.vlm_with_expert.vlm.state_dict()
    for key, value in source.state_dict().items():
        if key in ours:
            assert torch.equal(ours[key], value), key
    # a truncated file is a clear error, never a silent partial load
    data = (tmp_path / 'vlm' / 'model.safetensors').read_bytes()
    (tmp_path / 'vlm' / 'model.safetensors').write_bytes(data[:len(data) // 2])
    with pytest.raises(VLMWeightsError, match='cannot read'):
        model.load_vlm_weights(tmp_path / 'vlm')
    with pytest.raises(VLMWeightsError, match='not a directory'):
        model.load_vlm_weights(tmp_path / 'nowhere')


def test_image_special_tokens_wrap_each_image():
    cfg = dataclasses.replace(SmolVLAConfig.preset('tiny'), add_image_special_tokens=True)
    with pytest.raises(ValueError, match='image_special_token_ids'):
        VLAFlowMatching(cfg)
    model = VLAFlowMatching(cfg, image_special_token_ids=(259, 261)).eval()
    inputs = _inputs(cfg)
    with torch.no_grad():
        emb, pad, ar = model.embed_prefix(**inputs)
        tokens_per_image = 16 + 3  # <fake><global-img> 16 image tokens <fake>
        assert emb.shape[1] == 2 * tokens_per_image + cfg.tokenizer_max_length + 1
        table = model.vlm_with_expert.vlm.model.text_model.embed_tokens.weight
        torch.testing.assert_close(emb[0, 0], table[259])
        torch.testing.assert_close(emb[0, 1], table[261])
        torch.testing.assert_close(emb[0, tokens_per_image - 1], table[259])
        assert not pad[1, tokens_per_image + 2]  # sample 1's second image is masked ...
        assert pad[1, tokens_per_image]  # ... but its special tokens are not
        assert ar[0].tolist() == [0] * (emb.shape[1] - 1) + [1]
        noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim)
        a = model.sample_actions(**inputs, noise=noise, num_steps=2)
        b = model.sample_actions(**inputs, noise=noise, num_steps=2, use_cache=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_prefix_length_pads_the_prefix_without_changing_the_chunk(tiny):
    cfg = tiny.config
    inputs = _inputs(cfg)
    noise = torch.randn(B, cfg.chunk_size, cfg.max_action_dim)
    try:
        with torch.no_grad():
            plain = tiny.sample_actions(**inputs, noise=noise, num_steps=2)
            tiny.config = dataclasses.replace(cfg, prefix_length=60)
            emb, pad, _ = tiny.embed_prefix(**inputs)
            padded = tiny.sample_actions(**inputs, noise=noise, num_steps=2)
    finally:
        tiny.config = cfg
    assert emb.shape[1] == 60 and not pad[:, 2 * 16 + cfg.tokenizer_max_length + 1:].any()
    torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-5)
