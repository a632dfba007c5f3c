"""SmolVLAPolicy on the tiny preset: inputs, determinism, normalization, RTC inputs and the loss."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from smolvla_ros.policy import SmolVLAConfig, SmolVLAPolicy  # noqa: E402
from smolvla_ros.policy.configuration_smolvla import PolicyFeature  # noqa: E402
from smolvla_ros.policy.policy import FeatureMismatchError, PolicyInputError  # noqa: E402
from smolvla_ros.policy.processor_smolvla import ProcessingError  # noqa: E402

CAMS = ('observation.images.camera1', 'observation.images.camera2')
STATS = {
    'observation.state': {'mean': [0.5, -1.0, 2.0, 0.0, 1.0, 3.0],
                          'std': [2.0, 0.5, 1.0, 4.0, 1.5, 0.25]},
    'action': {'mean': [10.0, -20.0, 30.0, 0.0, 5.0, 50.0],
               'std': [5.0, 10.0, 2.0, 1.0, 3.0, 25.0]},
}


@pytest.fixture(scope='module')
def policy():
    """The tiny preset with dataset stats (module-scoped: building it takes ~1 s)."""
    config = SmolVLAConfig.preset('tiny')
    torch.manual_seed(0)
    return SmolVLAPolicy(config, STATS).eval()


def make_batch(bsize=2, seed=0, tasks=None):
    g = torch.Generator().manual_seed(seed)
    return {
        CAMS[0]: torch.rand(bsize, 3, 48, 64, generator=g),  # wide: padded on top
        CAMS[1]: torch.rand(bsize, 3, 64, 64, generator=g),
        'observation.state': torch.randn(bsize, 6, generator=g) * 3,
        'task': tasks or ['pick up the cube', 'open the drawer'][:bsize],
    }


def noise_for(policy, bsize=2, seed=1):
    cfg = policy.config
    return torch.randn(bsize, cfg.chunk_size, cfg.max_action_dim,
                       generator=torch.Generator().manual_seed(seed))


def test_predict_chunk_shape_and_determinism(policy):
    batch = make_batch()
    noise = noise_for(policy)
    a = policy.predict_chunk(batch, noise=noise)
    assert a.shape == (2, 50, 6) and a.dtype == torch.float32
    torch.testing.assert_close(policy.predict_chunk(batch, noise=noise.clone()), a, rtol=0, atol=0)
    assert not torch.allclose(policy.predict_chunk(batch, noise=noise_for(policy, seed=2)), a)
    # Each sample depends only on its own inputs and noise.
    single = {k: (v[:1] if torch.is_tensor(v) else v[:1]) for k, v in batch.items()}
    torch.testing.assert_close(policy.predict_chunk(single, noise=noise[:1]), a[:1],
                               atol=1e-5, rtol=1e-5)


def test_predict_chunk_is_the_model_sampler_between_normalize_and_unnormalize(policy):
    """Rebuild the pipeline by hand from the processors' definitions and compare."""
    batch = make_batch()
    noise = noise_for(policy)
    cfg = policy.config
    mean = torch.tensor(STATS['observation.state']['mean'])
    std = torch.tensor(STATS['observation.state']['std'])
    state = (batch['observation.state'] - mean) / (std + 1e-8)
    state = torch.cat([state, torch.zeros(2, cfg.max_state_dim - 6)], dim=1)
    images = []
    for key in CAMS:
        img = batch[key]
        h, w = img.shape[-2:]
        ratio = max(w / 64, h / 64)
        img = torch.nn.functional.interpolate(img, size=(int(h / ratio), int(w / ratio)),
                                              mode='bilinear', align_corners=False)
        img = torch.nn.functional.pad(img, (64 - img.shape[-1], 0, 64 - img.shape[-2], 0))
        images.append(img * 2 - 1)
    tok = policy.tokenizer(['pick up the cube\n', 'open the drawer\n'], padding='max_length',
                           max_length=cfg.tokenizer_max_length, truncation=True,
                           return_tensors='pt')
    with torch.no_grad():
        raw = policy.model.sample_actions(images, [torch.ones(2, dtype=torch.bool)] * 2,
                                          tok['input_ids'], tok['attention_mask'].bool(), state,
                                          noise=noise)
    amean = torch.tensor(STATS['action']['mean'])
    astd = torch.tensor(STATS['action']['std'])
    expected = raw[:, :, :6] * astd + amean
    torch.testing.assert_close(policy.predict_chunk(batch, noise=noise), expected)


def test_rtc_left_over_is_normalized_and_padded(policy, monkeypatch):
    seen = {}
    original = policy.model.sample_actions

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(policy.model, 'sample_actions', spy)
    left = torch.tensor(STATS['action']['mean']).expand(2, 20, 6).clone()
    left[:, :, 0] += torch.tensor(STATS['action']['std'][0])  # +1 std on joint 0
    out = policy.predict_chunk(make_batch(), noise=noise_for(policy),
                               prev_chunk_left_over=left.numpy(), inference_delay=np.int64(4))
    prev = seen['prev_chunk_left_over']
    assert prev.shape == (2, 20, 32) and seen['inference_delay'] == 4
    torch.testing.assert_close(prev[:, :, 0], torch.ones(2, 20), atol=1e-6, rtol=0)
    assert torch.all(prev[:, :, 1:] == 0)
    assert out.shape == (2, 50, 6) and torch.isfinite(out).all()


def test_rtc_pulls_the_start_of_the_chunk_toward_the_left_over(policy):
    """End to end through the real guided sampler: the prefix moves toward the old chunk."""
    batch = make_batch()
    noise = noise_for(policy)
    plain = policy.predict_chunk(batch, noise=noise)
    left = plain[:, :20] + torch.tensor(STATS['action']['std']) * 2.0  # a different old chunk
    guided = policy.predict_chunk(batch, noise=noise, prev_chunk_left_over=left,
                                  inference_delay=5)
    before = (plain[:, :5] - left[:, :5]).abs().mean()
    after = (guided[:, :5] - left[:, :5]).abs().mean()
    assert after < before


def test_feature_validation_names_exact_keys(policy):
    policy.validate_features(CAMS, state_dim=6, action_dim=6)
    with pytest.raises(FeatureMismatchError) as info:
        policy.validate_features([CAMS[0], 'observation.images.wrist'])
    msg = str(info.value)
    assert "missing image features ['observation.images.camera2']" in msg
    assert "unexpected image features ['observation.images.wrist']" in msg
    with pytest.raises(FeatureMismatchError, match='observation.state has 7 dims'):
        policy.validate_features(CAMS, state_dim=7)
    batch = make_batch()
    del batch[CAMS[1]]
    batch['observation.images.front'] = batch[CAMS[0]]
    with pytest.raises(FeatureMismatchError, match=r"missing image features \['observation"
                                                  r"\.images\.camera2'\]; unexpected image "
                                                  r"features \['observation\.images\.front'\]"):
        policy.predict_chunk(batch)
    batch = make_batch()
    del batch['observation.state']
    with pytest.raises(FeatureMismatchError, match='observation.state'):
        policy.predict_chunk(batch)


def test_bad_inputs_give_specific_errors(policy):
    batch = make_batch()
    # noise and the left-over's batch size are the model's to check (ModelInputError is a
    # PolicyInputError, so callers of the policy catch one type)
    with pytest.raises(PolicyInputError, match=r'noise must be \[2, 50, 32\], got \[2, 50, 6\]'):
        policy.predict_chunk(batch, noise=torch.zeros(2, 50, 6))
    with pytest.raises(PolicyInputError, match='prev_chunk_left_over has batch 1, expected 2'):
        policy.predict_chunk(batch, prev_chunk_left_over=torch.zeros(1, 5, 6), inference_delay=1)
    with pytest.raises(PolicyInputError, match=r'observation.state must be \[B,S\]'):
        policy.predict_chunk({**batch, 'observation.state': batch['observation.state'][0]})
    with pytest.raises(PolicyInputError, match='needs inference_delay'):
        policy.predict_chunk(batch, prev_chunk_left_over=torch.zeros(2, 5, 6))
    with pytest.raises(PolicyInputError, match=r'prev_chunk_left_over must be \[B, <= 50, 6\]'):
        policy.predict_chunk(batch, prev_chunk_left_over=torch.zeros(2, 5, 7), inference_delay=1)
    with pytest.raises(PolicyInputError, match='inference_delay must be an int in 0..50'):
        policy.predict_chunk(batch, prev_chunk_left_over=torch.zeros(2, 5, 6), inference_delay=-1)
    with pytest.raises(ProcessingError, match="'task' has 1 entries for a batch of 2"):
        policy.predict_chunk({**batch, 'task': ['one']})
    with pytest.raises(PolicyInputError, match='batch size 1'):
        policy.predict_chunk({**batch, CAMS[0]: batch[CAMS[0]][:1]})
    with pytest.raises(PolicyInputError, match=r'camera1 must be float in \[0, 1\]'):
        policy.predict_chunk({**batch, CAMS[0]: (batch[CAMS[0]] * 255).to(torch.uint8)})


def test_compute_loss_masks_padded_steps_and_crops_action_dims(policy):
    torch.manual_seed(3)
    batch = make_batch()
    batch['action'] = torch.randn(2, 50, 6) * 5
    is_pad = torch.zeros(2, 50, dtype=torch.bool)
    is_pad[0, 30:] = True  # sample 0: 30 valid steps, sample 1: all 50
    batch['action_is_pad'] = is_pad
    noise, time = noise_for(policy), torch.tensor([0.3, 0.8])
    loss = policy.compute_loss(batch, noise=noise, time=time)

    # Reference: the model's per-element error, cropped and masked by hand.
    inputs = policy.prepare_inputs(batch)
    mean, std = torch.tensor(STATS['action']['mean']), torch.tensor(STATS['action']['std'])
    actions = torch.cat([(batch['action'] - mean) / (std + 1e-8), torch.zeros(2, 50, 26)], dim=2)
    per_elem = policy.model(inputs['images'], inputs['img_masks'], inputs['lang_tokens'],
                            inputs['lang_masks'], inputs['state'], actions, noise=noise, time=time)
    assert per_elem[:, :, 6:].abs().sum() > 0  # the padded dims do carry error: cropping matters
    valid = (~is_pad)[:, :, None].float()
    expected = (per_elem[:, :, :6] * valid).sum() / (80 * 6)
    torch.testing.assert_close(loss, expected)
    per_sample = policy.compute_loss(batch, noise=noise, time=time, reduction='none')
    torch.testing.assert_close(per_sample, torch.stack([
        (per_elem[0, :30, :6]).sum() / (30 * 6), per_elem[1, :, :6].sum() / (50 * 6)]))

    # Actions on padded steps do not change the loss; all steps padded gives 0, not nan.
    changed = dict(batch, action=batch['action'].clone())
    changed['action'][0, 30:] += 100.0
    torch.testing.assert_close(policy.compute_loss(changed, noise=noise, time=time), loss)
    all_pad = dict(batch, action_is_pad=torch.ones(2, 50, dtype=torch.bool))
    assert policy.compute_loss(all_pad, noise=noise, time=time).item() == 0.0
    # Gradients reach the trainable action expert.
    loss.backward()
    assert policy.model.action_out_proj.weight.grad is not None
    policy.zero_grad(set_to_none=True)

    with pytest.raises(PolicyInputError, match=r'action_is_pad must be \[2, 50\]'):
        policy.compute_loss(dict(batch, action_is_pad=is_pad[:, :10]))
    with pytest.raises(PolicyInputError, match=r'action must be \[2, 50, 6\]'):
        policy.compute_loss(dict(batch, action=batch['action'][:, :10]))
    with pytest.raises(PolicyInputError, match=r'time must be \[2\], got \[3\]'):
        policy.compute_loss(batch, time=torch.ones(3))


def test_empty_camera_placeholders_and_presets():
    base = SmolVLAConfig.preset('tiny')
    config = dataclasses.replace(base, empty_cameras=1)
    torch.manual_seed(0)
    policy = SmolVLAPolicy(config).eval()
    assert 'observation.images.empty_camera_0' in config.image_features
    assert policy.required_image_keys == CAMS
    out = policy.predict_chunk(make_batch(1, tasks=['x']), noise=noise_for(policy, 1))
    assert out.shape == (1, 50, 6)
    # Presets are reproducible (seed 0) and load in bf16 with float32 outputs.
    p1 = SmolVLAPolicy.from_pretrained('tiny')
    # forced: on a CPU without native bf16 from_pretrained would keep fp32 (test_precision.py)
    p2 = SmolVLAPolicy.from_pretrained('tiny', dtype=torch.bfloat16, force_dtype=True)
    w1 = p1.state_dict()['model.action_out_proj.weight']
    torch.testing.assert_close(SmolVLAPolicy.from_pretrained('tiny').state_dict()[
        'model.action_out_proj.weight'], w1, rtol=0, atol=0)
    w2 = p2.state_dict()['model.action_out_proj.weight']
    assert w2.dtype == torch.float32  # LeRobot keeps the projections in fp32...
    torch.testing.assert_close(w2, w1, rtol=0, atol=0)  # ...never rounded through bf16
    assert p2.state_dict()['model.vlm_with_expert.lm_expert.norm.weight'].dtype == torch.bfloat16
    a = p1.predict_chunk(make_batch(1, tasks=['x']), noise=noise_for(p1, 1))
    b = p2.predict_chunk(make_batch(1, tasks=['x']), noise=noise_for(p1, 1))
    assert b.dtype == torch.float32
    torch.testing.assert_close(b, a, atol=0.1, rtol=0.1)
    with pytest.raises(FeatureMismatchError, match='at least one VISUAL'):
        SmolVLAPolicy(dataclasses.replace(
            base, input_features={'observation.state': PolicyFeature('STATE', (6,))}))


def test_image_special_tokens_come_from_the_tokenizer():
    config = dataclasses.replace(SmolVLAConfig.preset('tiny'), add_image_special_tokens=True)
    torch.manual_seed(0)
    policy = SmolVLAPolicy(config).eval()
    tok = policy.tokenizer
    assert policy.model.image_special_token_ids == (
        tok.convert_tokens_to_ids('<fake_token_around_image>'),
        tok.convert_tokens_to_ids('<global-img>'))
    out = policy.predict_chunk(make_batch(1, tasks=['x']), noise=noise_for(policy, 1))
    assert out.shape == (1, 50, 6) and torch.isfinite(out).all()
