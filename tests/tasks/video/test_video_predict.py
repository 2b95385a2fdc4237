"""`predict` and `export` for the video classifier: mp4 files written with PyAV, as a user has them."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from lightning_template.tasks.video import folder
from lightning_template.tasks.video.clips import VideoClips
from lightning_template.tasks.video.synthetic import make_synthetic_videos
from lightning_template_core import SampleKey
from lightning_template_core.testing import console_script
from lightning_template_core.testing.runs import tiny_overrides, trained_model

TINY = tiny_overrides(__file__)

av = pytest.importorskip("av")


def _write_mp4(path, frames: np.ndarray) -> None:
    """``frames`` ``(T, 3, H, W)`` uint8 as an H.264 mp4."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.height, stream.width = frames.shape[2:]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.transpose(1, 2, 0).copy(), format="rgb24")))
        container.mux(stream.encode())


def test_predict_gives_the_classes_of_the_models_own_forward_pass(fitted, tmp_path):
    checkpoint = fitted("video").run_dir / "checkpoints" / "last.ckpt"
    frames, starts, _ = make_synthetic_videos(3, seed=5, length=(24, 32))
    ends = [*starts[1:], len(frames)]
    inputs = tmp_path / "videos"
    inputs.mkdir()
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        _write_mp4(inputs / f"video{i}.mp4", frames[start:end])
    (inputs / "broken.mp4").write_bytes(b"not a video")
    done = console_script("predict", f"ckpt_path={checkpoint}", f"input={inputs}", f"output={tmp_path / 'p.csv'}")
    rows = {row["input"]: row for row in csv.DictReader((tmp_path / "p.csv").open())}
    assert len(rows) == 3 and "broken.mp4" in done.stderr

    trained, cfg = trained_model(checkpoint, TINY)
    clip_len, _, size, _ = trained.description.item_shape
    for i in range(3):
        path = inputs / f"video{i}.mp4"
        source = folder.VideoFolderFrames([folder.probe(path, 0)], size)
        clips = VideoClips(source, clip_len, cfg.data.frame_stride, eval_clips=cfg.data.eval_clips)
        with torch.no_grad():
            logits = trained.model(clips.__getitems__([SampleKey(0, 0)]).clips).mean(0)
        assert rows[str(path)]["class"] == trained.description.classes[int(logits.argmax())]
