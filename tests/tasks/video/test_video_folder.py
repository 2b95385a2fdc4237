"""A folder of real video files written with PyAV: indexing, seeking, splits, corrupt files, a real fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from lightning_template.tasks.video.folder import VideoFolderFrames, index_folder
from lightning_template_core import UserError
from lightning_template_core.testing.runs import compose_fit, describe_data

av = pytest.importorskip("av")

FRAMES = 24


def gray_level(t: int) -> int:
    """Frame ``t`` of a written video is flat grey at this level, so a decoded frame tells its number."""
    return 10 + 10 * t


def write_video(path: Path, frames: int = FRAMES, codec: str = "mpeg4", fps: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width, stream.pix_fmt = 40, 48, "yuv420p"
        stream.options = {"g": "5"}  # a keyframe every 5 frames: a seek must decode forward from one
        for t in range(frames):
            image = np.full((40, 48, 3), gray_level(t), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_folder(root: Path, per_class: int = 3, corrupt: bool = True) -> Path:
    for name in ("left", "right"):
        for i in range(per_class):
            write_video(root / name / f"v{i}.{'avi' if i % 2 else 'mp4'}")
    if corrupt:
        (root / "left" / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
        whole = (root / "right" / "v0.mp4").read_bytes()
        (root / "right" / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    return root


def test_index_counts_frames_and_leaves_out_corrupt_files(tmp_path):
    root = make_folder(tmp_path / "videos")
    with pytest.warns(UserWarning) as caught:
        classes, sources = index_folder(root, 32, seed=0, val_fraction=0.34, test_fraction=0.34)
    reported = " ".join(str(w.message) for w in caught)
    assert "junk.mp4" in reported and "truncated.mp4" in reported
    assert classes == ["left", "right"]
    assert {split: len(source.videos) for split, source in sources.items()} == {"train": 2, "val": 2, "test": 2}
    assert all(video.frames == FRAMES for source in sources.values() for video in source.videos)


def test_a_clip_decodes_exactly_its_frames_after_a_seek(tmp_path):
    root = make_folder(tmp_path / "videos", per_class=4, corrupt=False)
    _, sources = index_folder(root, 16, seed=0, val_fraction=0.25, test_fraction=0.25)
    source = sources["train"]
    assert isinstance(source, VideoFolderFrames) and source.num_frames == 4 * FRAMES
    assert {video.path.suffix for video in source.videos} == {".mp4", ".avi"}
    starts = np.array([0, 7, FRAMES + 13, 3 * FRAMES + 1])  # mid-GOP starts
    clips = source.read(starts, clip_len=4, stride=2)
    assert clips.shape == (4, 4, 3, 16, 16)
    levels = clips.float().mean(dim=(2, 3, 4)).numpy()
    local = starts - source.video_starts[np.searchsorted(source.video_starts, starts, side="right") - 1]
    expected = [[gray_level(first + 2 * k) for k in range(4)] for first in local]
    np.testing.assert_allclose(levels, expected, atol=4.5)  # lossy codec; neighbours are 10 apart


def test_split_files_choose_the_videos(tmp_path):
    root = make_folder(tmp_path / "videos", corrupt=False)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("left/v0.mp4 1\nright/v0.mp4 2\nleft/v2.mp4 1\n# a comment\n")
    (root / "splits" / "test.txt").write_text("right/v1.avi\n")
    _, sources = index_folder(root, 16, seed=0, val_fraction=0.34, test_fraction=0.5)
    names = {split: sorted(v.path.relative_to(root).as_posix() for v in s.videos) for split, s in sources.items()}
    assert names["test"] == ["right/v1.avi"]
    assert len(names["val"]) == 1 and len(names["train"]) == 2  # val carved from train.txt
    assert sorted(names["train"] + names["val"]) == ["left/v0.mp4", "left/v2.mp4", "right/v0.mp4"]


def test_a_folder_without_readable_videos_is_a_user_error(tmp_path):
    root = tmp_path / "videos"
    (root / "cls").mkdir(parents=True)
    (root / "cls" / "bad.mp4").write_bytes(b"not a video")
    with pytest.warns(UserWarning, match="bad.mp4"), pytest.raises(UserError, match=r"data\.root=.*none readable"):
        index_folder(root, 16, seed=0, val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(UserError, match="is not a folder"):
        index_folder(tmp_path / "missing", 16, seed=0, val_fraction=0.1, test_fraction=0.1)


@pytest.mark.slow
@pytest.mark.smoke
def test_fit_trains_on_a_video_folder_and_skips_corrupt_files(fit, tmp_path):
    root = make_folder(tmp_path / "videos", per_class=4)
    run = fit(
        "experiment=video_folder",
        f"data.root={root}",
        "data.frame_size=32",
        "data.num_workers=0",
        "data.global_batch_size=4",
        "data.clip_len=4",
        "data.eval_clips=2",
        "data.val_fraction=0.25",
        "data.test_fraction=0.25",
        "model.net.widths=[8,16]",
        "model.net.hidden_size=16",
        "trainer.max_steps=3",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    )
    assert "junk.mp4" in run.output and "truncated.mp4" in run.output
    assert "2 unreadable file(s) left out" in run.output
    summary = run.summary()
    assert summary["global_steps"] == 3 and "test/video_acc" in summary["test"]


def test_a_folder_with_one_class_is_one_paragraph(tmp_path):
    """A classifier needs two classes: refused when the data is described, before a network is built."""
    root = tmp_path / "videos"
    for i in range(3):
        write_video(root / "left" / f"v{i}.mp4")
    fractions = ["data.val_fraction=0.34", "data.test_fraction=0.34"]
    cfg = compose_fit(
        ["experiment=video_folder", f"data.root={root}", "data.frame_size=32", "data.clip_len=4", *fractions]
    )
    with pytest.raises(UserError, match=r"one class \('left'\): a classifier needs two or more"):
        describe_data(instantiate(cfg.data))
