"""The video data: order-only synthetic classes, and the shuffler's guarantees on real clip indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_template.tasks.video.data import SyntheticVideoDataModule
from lightning_template.tasks.video.synthetic import SLOTS, STEPS, make_synthetic_videos
from lightning_template_core import EvalBatchSampler, SampleKey, UserError

SMALL = {"num_train": 24, "num_val": 6, "num_test": 6, "global_batch_size": 8, "seed": 3}


def disc_angles(frames: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the bright disc's centre in each frame, seen from the image centre."""
    bright = frames.astype(np.float64).sum(1) > 1.5 * 255
    ys, xs = np.mgrid[: frames.shape[2], : frames.shape[3]]
    cy = (bright * ys).sum((1, 2)) / bright.sum((1, 2))
    cx = (bright * xs).sum((1, 2)) / bright.sum((1, 2))
    return np.degrees(np.arctan2(cy - 15.5, cx - 15.5))


def datamodule(**overrides) -> SyntheticVideoDataModule:
    dm = SyntheticVideoDataModule(**{**SMALL, **overrides})
    dm.resolve_layout(1)
    dm.setup()
    return dm


def test_class_is_in_the_order_of_frames_not_in_their_set():
    videos = make_synthetic_videos(40, seed=1)
    assert videos.frames.dtype == np.uint8 and videos.frames.shape[1:] == (3, 32, 32)
    assert np.bincount(videos.labels).tolist() == [10] * 4
    for start, label in zip(videos.video_starts, videos.labels, strict=True):
        angles = disc_angles(videos.frames[start : start + SLOTS])
        # the set: any 8 consecutive frames put the disc once on each of 8 evenly spaced slots, whatever the class
        ordered = np.sort(angles % 360)
        np.testing.assert_allclose(np.diff(ordered, append=ordered[0] + 360), 360 / SLOTS, atol=15)
        # the order: the step from one frame to the next is the class
        steps = np.round(((np.diff(angles) + 180) % 360 - 180) / (360 / SLOTS))
        assert set(steps.tolist()) == {STEPS[label]}


def test_training_clips_stay_inside_videos_in_order_and_reshuffle_each_epoch():
    dm = datamodule(frame_stride=3, clip_len=4, tail="overlap")
    train = dm.datasets["train"]
    loader = dm.train_dataloader()
    sampler = loader.batch_sampler
    assert sampler.block_size == train.span == 12
    frames, starts = train.source.frames, train.source.video_starts
    ends = np.append(starts[1:], train.source.num_frames)
    orders = []
    for epoch in (0, 1):
        sampler.set_position(epoch)
        keys = [key for batch in sampler for key in batch]
        first = np.array([key.index for key in keys])
        video = np.searchsorted(starts, first, side="right") - 1
        assert np.all(first + train.span <= ends[video]), "a clip crosses into the next video"
        batch = train.__getitems__(keys[:8])
        expected = frames[torch.from_numpy(first[:8, None] + np.arange(4) * 3)].float() / 255
        torch.testing.assert_close(batch.clips * 0.25 + 0.5, expected)  # every 3rd frame, in order
        assert batch.labels.tolist() == train.source.labels[video[:8]].tolist()
        orders.append(first)
    assert len(orders[0]) == len(orders[1]) and not np.array_equal(orders[0], orders[1])
    assert len(set(orders[0]) & set(orders[1])) > len(orders[0]) // 2  # mostly the same clips, in a new order


def test_shuffled_frame_order_permutes_inside_each_clip_keyed_by_epoch():
    kept = datamodule().datasets["train"]
    shuffled = datamodule(frame_order="shuffled").datasets["train"]
    keys = [SampleKey(int(start), 0) for start in kept.source.video_starts[:6]]
    reference, mixed = kept.__getitems__(keys).clips, shuffled.__getitems__(keys).clips
    again = shuffled.__getitems__(keys).clips
    next_epoch = shuffled.__getitems__([SampleKey(key.index, 1) for key in keys]).clips
    assert torch.equal(mixed, again) and not torch.equal(mixed, next_epoch)
    for clip, original in zip(mixed, reference, strict=True):
        matches = [(frame == original).all(dim=(1, 2, 3)).nonzero().flatten().tolist() for frame in clip]
        assert sorted(m[0] for m in matches) == list(range(8))  # the same frames, another order
    assert not torch.equal(mixed, reference)


def test_evaluation_shards_whole_videos_across_ranks():
    dm = datamodule(eval_clips=3)
    val = dm.datasets["val"]
    videos = val.evaluated_videos()
    seen = []
    for rank in range(2):
        for keys in EvalBatchSampler(videos, 2, rank, 2):
            batch = val.__getitems__(keys)
            assert batch.clips_per_video == 3 and len(batch.labels) == 3 * len(keys)
            # all clips of a video in one batch, on one rank, with the video's label
            assert batch.labels.view(-1, 3).eq(batch.labels[::3, None]).all()
            seen += [key.index for key in keys]
    assert sorted(seen) == sorted(videos.tolist())


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"frame_order": "reversed"}, "data.frame_order"),
        ({"tail": "pad"}, "data.tail"),
        ({"clip_len": 0}, "data.clip_len"),
        ({"clip_len": 30, "video_length": [10, 12]}, "data.clip_len"),
    ],
)
def test_bad_settings_name_the_setting(overrides, setting):
    with pytest.raises(UserError, match=setting.replace(".", r"\.")):
        datamodule(**overrides)
