"""Precision and compilation as serving options: native-bf16 detection, the fp32 fallback, the
bf16 and compiled outputs against fp32 (tiny preset), and less work per chunk (the vision tower
once per frame, no resize of frames already at the model's resolution)."""
from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy import SmolVLAPolicy, precision, processor_smolvla  # noqa: E402
from smolvla_ros.policy.precision import FORCE_ENV, cpu_flags, resolve_dtype  # noqa: E402

CAMS = ('observation.images.camera1', 'observation.images.camera2')
NO_BF16 = frozenset({'fpu', 'sse2', 'avx2', 'fma'})
# Bounds stated in docs/policy.md ("dtype, device, compile"), tiny preset, actions of scale ~1.
BF16_TINY_ATOL = 0.05
COMPILED_TINY_ATOL = 1e-4


@pytest.fixture(scope='module')
def fp32():
    return SmolVLAPolicy.from_pretrained('tiny')


def batch(bsize=1, seed=0, size=(48, 64)):
    g = torch.Generator().manual_seed(seed)
    return {**{cam: torch.rand(bsize, 3, *size, generator=g) for cam in CAMS},
            'observation.state': torch.randn(bsize, 6, generator=g),
            'task': ['pick up the cube'] * bsize}


def noise(policy, bsize=1, seed=1):
    cfg = policy.config
    return torch.randn(bsize, cfg.chunk_size, cfg.max_action_dim,
                       generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ detection and fallback


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / 'x86'
    x86.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n\n'
                   'processor\t: 1\nflags\t\t: fpu\n')
    assert cpu_flags(x86) == {'fpu', 'avx2', 'avx512f', 'avx512_bf16', 'amx_tile'}
    arm = tmp_path / 'arm'
    arm.write_text('processor\t: 0\nFeatures\t: fp asimd asimdhp bf16 sve\n')
    assert precision.native_cpu_flags(torch.bfloat16, cpu_flags(arm)) == ['bf16']
    assert precision.native_cpu_flags(torch.float16, cpu_flags(arm)) == ['asimdhp']
    assert cpu_flags(tmp_path / 'missing') == frozenset()


def test_bf16_is_native_only_with_avx512_bf16_or_amx():
    assert not precision.is_native(torch.bfloat16, 'cpu', NO_BF16)
    assert precision.is_native(torch.bfloat16, 'cpu', NO_BF16 | {'avx512_bf16'})
    assert precision.is_native(torch.bfloat16, 'cpu', NO_BF16 | {'amx_bf16'})
    assert not precision.is_native(torch.float16, 'cpu', NO_BF16 | {'avx512_bf16'})
    assert precision.is_native(torch.float32, 'cpu', frozenset())


def test_resolve_dtype_keeps_fp32_without_native_bf16_unless_forced(monkeypatch, caplog):
    monkeypatch.delenv(FORCE_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        assert resolve_dtype(torch.bfloat16, 'cpu', flags=NO_BF16) == torch.float32
    assert 'keeping float32' in caplog.text and 'avx512_bf16' in caplog.text
    assert resolve_dtype(torch.bfloat16, 'cpu', flags=NO_BF16 | {'amx_bf16'}) == torch.bfloat16
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=precision.__name__):
        assert resolve_dtype(torch.bfloat16, 'cpu', force=True, flags=NO_BF16) == torch.bfloat16
    assert 'emulated' in caplog.text
    monkeypatch.setenv(FORCE_ENV, '1')
    assert resolve_dtype(torch.bfloat16, 'cpu', flags=NO_BF16) == torch.bfloat16
    assert resolve_dtype(torch.float32, 'cpu', flags=NO_BF16) == torch.float32


def test_from_pretrained_applies_the_fallback(monkeypatch):
    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.setattr(precision, 'cpu_flags', lambda: NO_BF16)
    assert SmolVLAPolicy.from_pretrained('tiny', dtype=torch.bfloat16).dtype == torch.float32
    forced = SmolVLAPolicy.from_pretrained('tiny', dtype=torch.bfloat16, force_dtype=True)
    assert forced.dtype == torch.bfloat16
    monkeypatch.setattr(precision, 'cpu_flags', lambda: NO_BF16 | {'avx512_bf16'})
    native = SmolVLAPolicy.from_pretrained('tiny', dtype=torch.bfloat16)
    assert native.dtype == torch.bfloat16
    # fp32 islands where LeRobot keeps them (docs/lerobot_compat.md, "Dtypes")
    assert native.model.action_out_proj.weight.dtype == torch.float32
    assert native.model.state_proj.weight.dtype == torch.float32


# ------------------------------------------------------------------ accuracy of the modes


def test_bf16_actions_stay_within_the_stated_bound_of_fp32(fp32):
    bf16 = SmolVLAPolicy.from_pretrained('tiny', dtype=torch.bfloat16, force_dtype=True)
    assert bf16.dtype == torch.bfloat16
    obs = batch(2)
    ref = fp32.predict_chunk(obs, noise=noise(fp32, 2))
    out = bf16.predict_chunk(obs, noise=noise(fp32, 2))
    assert out.dtype == torch.float32
    err = float((out - ref).abs().max())
    assert 0 < err < BF16_TINY_ATOL, err  # > 0: the weights really are bf16


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a cold compile: ~1-5 min on 2 cores, longer on a loaded machine
def test_compiled_sampler_matches_eager(fp32):
    """torch.compile (inductor, C++ on the CPU) of the three pieces gives eager's actions."""
    compiled = SmolVLAPolicy.from_pretrained('tiny', compile_mode='default')
    assert compiled.compiled == 'default'
    assert hasattr(compiled.model.denoise_step, '_torchdynamo_orig_callable')
    obs = batch()
    ref = fp32.predict_chunk(obs, noise=noise(fp32))
    out = compiled.predict_chunk(obs, noise=noise(fp32))
    torch.testing.assert_close(out, ref, rtol=0, atol=COMPILED_TINY_ATOL)
    # Another observation of the same shapes reuses the graphs and still follows its inputs.
    other = batch(seed=5)
    torch.testing.assert_close(compiled.predict_chunk(other, noise=noise(fp32)),
                               fp32.predict_chunk(other, noise=noise(fp32)),
                               rtol=0, atol=COMPILED_TINY_ATOL)


# ------------------------------------------------------------------ work per chunk


@pytest.mark.parametrize('use_cache', [True, False])
def test_vision_tower_runs_once_per_chunk_not_per_flow_step(fp32, use_cache):
    """10 flow steps, 2 cameras, batch 2: one call of the tower over the 4 frames."""
    calls = []
    tower = fp32.model.vlm_with_expert.vlm.model.vision_model
    handle = tower.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(kwargs['pixel_values'].shape[0]),
        with_kwargs=True)
    try:
        fp32.predict_chunk(batch(2), noise=noise(fp32, 2), num_steps=10, use_cache=use_cache)
        fp32.predict_chunk(batch(2), noise=noise(fp32, 2), num_steps=10, use_cache=use_cache,
                           prev_chunk_left_over=torch.zeros(2, 20, 6), inference_delay=3)
    finally:
        handle.remove()
    assert calls == [4, 4]  # one per chunk (the second with real-time chunking guidance)


def test_frames_at_model_resolution_skip_the_resize(fp32, monkeypatch):
    width, height = fp32.config.resize_imgs_with_padding
    calls = []
    interpolate = processor_smolvla.F.interpolate
    monkeypatch.setattr(processor_smolvla.F, 'interpolate',
                        lambda *a, **k: calls.append(a[0].shape) or interpolate(*a, **k))
    at_size = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(3))
    out = processor_smolvla.resize_with_pad(at_size, width, height)
    assert calls == [] and out is at_size
    # The result is what the interpolation would have given (identity at the same size).
    torch.testing.assert_close(interpolate(at_size, size=(height, width), mode='bilinear',
                                           align_corners=False), at_size, rtol=0, atol=0)
    inputs = fp32.prepare_inputs(batch(2, size=(height, width)))
    assert calls == []
    torch.testing.assert_close(inputs['images'][0], batch(2, size=(height, width))[CAMS[0]] * 2 - 1,
                               rtol=0, atol=0)
    # A frame that needs only padding is padded, not interpolated; a larger one is resized.
    wide = torch.rand(1, 3, height // 2, width)
    padded = processor_smolvla.resize_with_pad(wide, width, height)
    assert calls == [] and padded.shape == (1, 3, height, width)
    torch.testing.assert_close(padded[:, :, height - height // 2:], wide, rtol=0, atol=0)
    processor_smolvla.resize_with_pad(torch.rand(1, 3, 2 * height, 2 * width), width, height)
    assert calls == [(1, 3, 2 * height, 2 * width)]


def test_the_serving_code_reports_the_dtype_it_serves(monkeypatch):
    """policy/serving.py (policy_server, smolvla-ros eval): the fallback, forcing, compile."""
    from smolvla_ros.core.inference.policy_io import PolicyIO, parse_rename_map
    from smolvla_ros.core.robot.contract import default_contract_path, load_contract
    from smolvla_ros.core.robot.dataset_units import DatasetUnits
    from smolvla_ros.paths import DEFAULT_POLICY_NAME, resolve_checkpoint
    from smolvla_ros.policy.serving import load_policy

    contract = load_contract(default_contract_path())
    io = PolicyIO(contract, DatasetUnits.from_contract(contract), parse_rename_map('', contract))
    checkpoint = resolve_checkpoint(DEFAULT_POLICY_NAME)
    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.setattr(precision, 'cpu_flags', lambda: NO_BF16)
    logs = []
    policy = load_policy(checkpoint, io, dtype='bfloat16', log=logs.append)
    assert policy.dtype == torch.float32 and policy.compiled is None
    assert 'float32 instead of bfloat16' in logs[-1]
    policy = load_policy(checkpoint, io, dtype='bfloat16', force_dtype=True, compile_model=True,
                         compile_mode='max-autotune', log=logs.append)
    assert policy.dtype == torch.bfloat16 and policy.compiled == 'max-autotune'
    assert '(bfloat16, compiled max-autotune)' in logs[-1]  # compiled lazily: no chunk run here
