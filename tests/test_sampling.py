import numpy as np

from fexa.represent.sampling import clip_indices, segment_indices


def test_short_clips_loop_from_the_start():
    idx = clip_indices(7, 5, 16)
    assert idx.shape == (5, 16)
    np.testing.assert_array_equal(idx.ravel(), np.arange(80) % 7)


def test_long_clips_train_window_and_test_spread():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = clip_indices(300, 5, 16, train=True, rng=rng).ravel()
        assert np.all(np.diff(idx) == 1) and idx[0] >= 0 and idx[-1] <= 299
    test = clip_indices(300, 5, 16).ravel()
    assert test[0] == 0 and test[-1] == 299 and np.all(np.diff(test) >= 3)


def test_segments_middle_and_random():
    # 100 frames, 8 segments of 2: span 99, tick 12.375 -> offsets int(6.1875 + 12.375 k)
    np.testing.assert_array_equal(segment_indices(100)[::2], [6, 18, 30, 43, 55, 68, 80, 92])
    np.testing.assert_array_equal(segment_indices(100)[1::2], [7, 19, 31, 44, 56, 69, 81, 93])
    rng = np.random.default_rng(1)
    for _ in range(20):
        idx = segment_indices(100, train=True, rng=rng)
        starts = idx[::2]
        assert np.all(idx[1::2] == starts + 1)
        assert np.all((starts >= 12 * np.arange(8)) & (starts < 12 * np.arange(8) + 12))
    short = segment_indices(7)
    assert len(short) == 16 and short.max() < 7
