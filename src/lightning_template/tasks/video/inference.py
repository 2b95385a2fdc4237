"""The trained video classifier outside training: classify video files; export the network.

A file is read as evaluation reads a video (PyAV, the ``video`` extra): ``data.eval_clips``
evenly spaced clips of ``data.clip_len`` frames every ``data.frame_stride``, frames
resized (squashed, antialiased bilinear) to the model's frame size and normalised as in
training; the mean of the clips' logits gives the video's class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from lightning_template.tasks.video import folder
from lightning_template.tasks.video.clips import VideoClips
from lightning_template_core import ExportSpec, SampleKey, TaskInference, visible_files


class VideoInference(TaskInference):
    """Video files in, class probabilities (averaged over each video's clips) out."""

    def input_files(self, path: Path) -> list[Path]:
        folder.import_av()
        return visible_files(path)

    def input_help(self) -> str:
        return f"The video classifier reads video files PyAV decodes ({', '.join(folder.VIDEO_EXTENSIONS)})."

    def read_input(self, path: Path) -> Iterator[tuple[str, Tensor]]:
        clip_len, _, height, _ = self.description.item_shape
        data = self.cfg.data
        frames = folder.VideoFolderFrames([folder.probe(path, label=0)], height)
        clips = VideoClips(frames, clip_len, data.get("frame_stride", 1), eval_clips=data.get("eval_clips", 1))
        if frames.num_frames < clips.span:
            raise ValueError(f"{frames.num_frames} frames, fewer than the {clips.span} one clip spans")
        yield str(path), clips.__getitems__([SampleKey(index=0, epoch=0)]).clips

    @torch.no_grad()
    def class_probabilities(self, inputs: Tensor) -> Tensor:
        """``inputs`` ``(videos, clips, T, 3, H, W)``: the softmax of each video's mean clip logits."""
        logits = self.model(inputs.flatten(0, 1).to(self.model.dtype))
        return torch.softmax(logits.view(*inputs.shape[:2], -1).mean(1).double(), dim=-1)

    def export_spec(self) -> ExportSpec:
        details = {
            "layout": "clips of frames in temporal order: (batch, frames, RGB, height, width)",
            "normalisation": {"how": "(pixels / 255 - mean) / std", "mean": 0.5, "std": 0.25},
            "resize": "antialiased bilinear, squashed to the frame size",
            "whole videos": "average the logits of evenly spaced clips of a video to classify the video",
        }
        return self.classifier_export(self.model.net, "clips", details)


INFERENCE = VideoInference
