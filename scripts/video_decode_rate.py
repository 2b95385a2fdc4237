"""Whether decoding keeps up with training on a folder of real video files (experiment=video_folder).

Writes a folder of encoded videos (``--videos`` files of ``--frames`` frames at
``--width`` x ``--height``, MPEG-4, a keyframe every 12 frames) in a temporary folder,
then measures side by side, on this machine:

* decode: training clips per second over a whole epoch of the DataModule's training
  loader with 0, 2 and 4 loader workers (PyAV decodes, seeks and resizes; the workers'
  start is counted, as it is in every epoch);
* train: clips per second of the video model's forward, backward and optimizer step
  on clips of the same shape, in this process.

Decoding keeps up where its clips/s (with the workers a run uses) is above training's.

    python scripts/video_decode_rate.py
    python scripts/video_decode_rate.py --videos 48 data.frame_size=112
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def write_videos(root: Path, count: int, frames: int, width: int, height: int) -> None:
    import av

    rng = np.random.default_rng(0)
    for i in range(count):
        path = root / f"class{i % 4}" / f"video{i:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"g": "12"}
            base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for t in range(frames):
                frame = np.roll(base, 3 * t, axis=1)  # moving content, as a camera pan
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)


def decode_rate(cfg, workers: int) -> tuple[float, int]:
    """Training clips per second over one whole epoch out of the loader with ``workers`` workers (their start
    included, as in every epoch), and the epoch's batches."""
    cfg.data.num_workers = workers
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    began, clips, batches = time.perf_counter(), 0, 0
    for batch in loader:
        clips, batches = clips + len(batch[0]), batches + 1
    return clips / (time.perf_counter() - began), batches


def train_rate(cfg, datamodule, steps: int = 5) -> float:
    """Clips per second of the model's forward, backward and step on clips of the run's shape."""
    description = datamodule.describe()
    model = instantiate(cfg.model, data=description.as_dict(), _convert_="all")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    micro = cfg.data.global_batch_size
    clips = torch.randn(micro, *description.item_shape)
    labels = torch.randint(description.num_classes, (micro,))
    for step in range(steps + 1):
        if step == 1:
            began = time.perf_counter()  # the first step warms up
        optimizer.zero_grad()
        F.cross_entropy(model(clips), labels).backward()
        optimizer.step()
    return steps * micro / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.frame_size=112")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="video-decode-") as work:
        root = Path(work) / "videos"
        write_videos(root, args.videos, args.frames, args.width, args.height)
        with initialize_config_dir(str(CONFIG_DIR), version_base=None):
            cfg = compose("fit", overrides=["experiment=video_folder", f"data.root={root}", *args.overrides])
        print(
            f"{args.videos} videos of {args.frames} frames at {args.width}x{args.height} (MPEG-4); clips of"
            f" {cfg.data.clip_len} frames (stride {cfg.data.frame_stride}) at {cfg.data.frame_size} px, global batch"
            f" {cfg.data.global_batch_size}; {torch.get_num_threads()} torch threads"
        )
        for workers in (0, 2, 4):
            rate, batches = decode_rate(cfg, workers)
            print(f"decode, {workers} workers: {rate:8.1f} clips/s ({batches} batches)")
        datamodule = instantiate(cfg.data)
        print(f"train (forward, backward, step): {train_rate(cfg, datamodule):8.1f} clips/s")


if __name__ == "__main__":
    main()
