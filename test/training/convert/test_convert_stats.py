"""Stats as LeRobot computes them: per episode, aggregation, image sampling and downsampling."""
from __future__ import annotations

import numpy as np
from smolvla_training.convert import stats as st


def test_aggregate_equals_stats_of_the_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(i, 1 + i, size=(n, 3)) for i, n in enumerate((5, 40, 17))]
    agg = st.aggregate([st.numeric_stats(p) for p in parts])
    whole = st.numeric_stats(np.concatenate(parts))
    for name in ('min', 'max', 'mean', 'std'):
        np.testing.assert_allclose(agg[name], whole[name], rtol=1e-12)
    assert agg['count'].tolist() == [62]


def test_image_stats_sampling_and_downsampling() -> None:
    assert st.sample_count(50) == 50 and st.sample_count(1000) == 177
    assert st.sample_count(100_000_000) == 10_000
    idx = st.sample_indices(1000)
    assert idx[0] == 0 and idx[-1] == 999 and np.all(np.diff(idx) > 0)
    assert st.downsample(np.zeros((480, 640, 3))).shape == (120, 160, 3)  # stride 4
    assert st.downsample(np.zeros((200, 250, 3))).shape == (200, 250, 3)  # below 300 px
    frames = [np.full((4, 4, 3), [0, 128, 255], np.uint8), np.full((4, 4, 3), [0, 0, 255],
                                                                   np.uint8)]
    s = st.image_stats(frames)
    assert s['mean'].shape == (3, 1, 1)
    np.testing.assert_allclose(s['mean'].ravel(), [0, 64 / 255, 1])
    np.testing.assert_allclose(s['std'].ravel(), [0, 64 / 255, 0])
    assert s['count'].tolist() == [2]
