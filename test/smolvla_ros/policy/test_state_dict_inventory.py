"""The smolvla_base geometry, built on the meta device, against LeRobot's key inventory.

docs/lerobot_compat.md, "Checkpoint files and keys" and "The SmolVLM2-500M backbone".
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy.configuration_smolvla import SmolVLAConfig  # noqa: E402
from smolvla_ros.policy.modeling_smolvla import VLAFlowMatching  # noqa: E402


def _expected_inventory() -> dict[str, tuple[int, ...]]:
    """Names and shapes of LeRobot's smolvla_base policy state dict, spelled out by hand."""
    inv: dict[str, tuple[int, ...]] = {
        'model.state_proj.weight': (960, 32), 'model.state_proj.bias': (960,),
        'model.action_in_proj.weight': (720, 32), 'model.action_in_proj.bias': (720,),
        'model.action_out_proj.weight': (32, 720), 'model.action_out_proj.bias': (32,),
        'model.action_time_mlp_in.weight': (720, 1440), 'model.action_time_mlp_in.bias': (720,),
        'model.action_time_mlp_out.weight': (720, 720), 'model.action_time_mlp_out.bias': (720,),
    }
    vis = 'model.vlm_with_expert.vlm.model.vision_model.'
    inv[vis + 'embeddings.patch_embedding.weight'] = (768, 3, 16, 16)
    inv[vis + 'embeddings.patch_embedding.bias'] = (768,)
    inv[vis + 'embeddings.position_embedding.weight'] = (1024, 768)
    for i in range(12):
        p = f'{vis}encoder.layers.{i}.'
        for proj in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            inv[f'{p}self_attn.{proj}.weight'] = (768, 768)
            inv[f'{p}self_attn.{proj}.bias'] = (768,)
        for norm in ('layer_norm1', 'layer_norm2'):
            inv[f'{p}{norm}.weight'] = (768,)
            inv[f'{p}{norm}.bias'] = (768,)
        inv[f'{p}mlp.fc1.weight'] = (3072, 768)
        inv[f'{p}mlp.fc1.bias'] = (3072,)
        inv[f'{p}mlp.fc2.weight'] = (768, 3072)
        inv[f'{p}mlp.fc2.bias'] = (768,)
    inv[vis + 'post_layernorm.weight'] = (768,)
    inv[vis + 'post_layernorm.bias'] = (768,)
    inv['model.vlm_with_expert.vlm.model.connector.modality_projection.proj.weight'] = (960, 12288)
    text = 'model.vlm_with_expert.vlm.model.text_model.'
    inv[text + 'embed_tokens.weight'] = (49280, 960)
    for i in range(16):
        p = f'{text}layers.{i}.'
        inv[p + 'self_attn.q_proj.weight'] = (960, 960)
        inv[p + 'self_attn.k_proj.weight'] = (320, 960)
        inv[p + 'self_attn.v_proj.weight'] = (320, 960)
        inv[p + 'self_attn.o_proj.weight'] = (960, 960)
        inv[p + 'mlp.gate_proj.weight'] = (2560, 960)
        inv[p + 'mlp.up_proj.weight'] = (2560, 960)
        inv[p + 'mlp.down_proj.weight'] = (960, 2560)
        inv[p + 'input_layernorm.weight'] = (960,)
        inv[p + 'post_attention_layernorm.weight'] = (960,)
    inv[text + 'norm.weight'] = (960,)
    inv['model.vlm_with_expert.vlm.lm_head.weight'] = (49280, 960)
    exp = 'model.vlm_with_expert.lm_expert.'
    for i in range(16):
        p = f'{exp}layers.{i}.'
        inv[p + 'self_attn.q_proj.weight'] = (960, 720)
        inv[p + 'self_attn.o_proj.weight'] = (720, 960)
        kv = (320, 720) if i % 2 == 0 else (320, 320)  # odd layers cross-attend VLM K/V
        inv[p + 'self_attn.k_proj.weight'] = kv
        inv[p + 'self_attn.v_proj.weight'] = kv
        inv[p + 'mlp.gate_proj.weight'] = (2048, 720)
        inv[p + 'mlp.up_proj.weight'] = (2048, 720)
        inv[p + 'mlp.down_proj.weight'] = (720, 2048)
        inv[p + 'input_layernorm.weight'] = (720,)
        inv[p + 'post_attention_layernorm.weight'] = (720,)
    inv[exp + 'norm.weight'] = (720,)
    return inv


@pytest.fixture(scope='module')
def base_on_meta() -> VLAFlowMatching:
    with torch.device('meta'):
        return VLAFlowMatching(SmolVLAConfig.preset('smolvla_base'))


def test_smolvla_base_has_exactly_450_046_176_parameters(base_on_meta):
    params = dict(base_on_meta.named_parameters())
    assert sum(p.numel() for p in params.values()) == 450_046_176
    vlm = sum(p.numel() for n, p in params.items() if n.startswith('vlm_with_expert.vlm.'))
    expert = sum(p.numel() for n, p in params.items() if n.startswith('vlm_with_expert.lm_expert.'))
    assert vlm == 350_165_184
    assert expert == 98_245_840
    assert all(p.device.type == 'meta' for p in params.values())


def test_state_dict_names_and_shapes_match_the_inventory(base_on_meta):
    state = {f'model.{k}': tuple(v.shape) for k, v in base_on_meta.state_dict().items()}
    expected = _expected_inventory()
    assert len(expected) == 500
    assert sorted(set(state) - set(expected)) == []
    assert sorted(set(expected) - set(state)) == []
    wrong = {k: (state[k], expected[k]) for k in expected if state[k] != expected[k]}
    assert wrong == {}


def test_lm_head_is_untied_from_the_embeddings(base_on_meta):
    vlm = base_on_meta.vlm_with_expert.vlm
    assert vlm.lm_head.weight is not vlm.model.text_model.embed_tokens.weight


def test_lerobot_dtype_layout_matches_the_checkpoint(base_on_meta):
    """bf16 everywhere except the 5 projections and the 16 cross-attention k/v.

    docs/lerobot_compat.md, "Dtypes".
    """
    import copy

    model = copy.deepcopy(base_on_meta).to_lerobot_dtypes(torch.bfloat16)
    fp32 = sorted(n for n, p in model.named_parameters() if p.dtype == torch.float32)
    assert len(fp32) == 10 + 16
    assert all(n.split('.')[0].startswith(('state_proj', 'action_')) or
               '.self_attn.k_proj' in n or '.self_attn.v_proj' in n for n in fp32)
