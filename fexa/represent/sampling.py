"""Which frames a model sees: QAFE/TraMP clips of n x 16 frames, and STT/Former-DFER segments.

Every function returns frame indices; clips shorter than needed loop back to their start, so a
7-frame clip is as valid an input as a 700-frame one.
"""

from __future__ import annotations

import numpy as np


def clip_indices(
    num_frames: int,
    num_subclips: int = 5,
    subclip_len: int = 16,
    train: bool = False,
    rng: np.random.Generator | None = None,
    random_start: bool = False,
) -> np.ndarray:
    """[num_subclips, subclip_len] frame indices (T = n x 16; QAFE-Net and TraMP-Former).

    Short videos loop from frame 0, or in training with ``random_start`` from a random frame (QAFE-Net's
    text: "the starting frame also chosen at random, with loop back to the beginning"); longer ones take
    a random contiguous window in training and indices spread evenly over the whole video in testing."""
    if num_frames < 1:
        raise ValueError("cannot sample a clip from a video with no frames")
    total = num_subclips * subclip_len
    if num_frames <= total:
        start = (rng or np.random.default_rng()).integers(0, num_frames) if train and random_start else 0
        idx = (start + np.arange(total)) % num_frames
    elif train:
        start = (rng or np.random.default_rng()).integers(0, num_frames - total + 1)
        idx = start + np.arange(total)
    else:
        idx = np.linspace(0, num_frames - 1, total).astype(np.int64)
    return idx.reshape(num_subclips, subclip_len)


def segment_indices(
    num_frames: int,
    num_segments: int = 8,
    frames_per_segment: int = 2,
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """[num_segments * frames_per_segment] indices: the video is cut into equal segments and a run
    of consecutive frames is taken from each (random offset in training, the middle in testing);
    STT's and Former-DFER's 8 x 2 = 16 frames."""
    if num_frames < 1:
        raise ValueError("cannot sample segments from a video with no frames")
    span = num_frames - frames_per_segment + 1
    if span >= num_segments:
        if train:
            step = span // num_segments
            offsets = np.arange(num_segments) * step + (rng or np.random.default_rng()).integers(0, step, num_segments)
        else:
            tick = span / num_segments
            offsets = (tick / 2 + tick * np.arange(num_segments)).astype(np.int64)
    else:
        offsets = (np.arange(num_segments) * num_frames) // num_segments
    idx = offsets[:, None] + np.arange(frames_per_segment)[None, :]
    return (idx % num_frames).ravel()
