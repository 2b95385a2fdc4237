"""How much memory one training clip of the video task costs, and the micro-batch that fits a given GPU.

Activation memory grows with clips x frames x pixels, so ``data.micro_batch_size`` is the
lever for a small GPU: the global batch (and so the training) stays the same, only the
number of accumulation steps changes. This script composes the run's config, runs one
forward and backward pass on CPU, and sums the tensors autograd saves for backward
(``torch.autograd.graph.saved_tensors_hooks``, each storage counted once): that is the
memory a micro-batch holds at its peak, on any device, in the training precision.

    python scripts/video_memory.py                          # experiment=video
    python scripts/video_memory.py --gpu-gib 4 experiment=video_folder data.frame_size=112
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lightning_template_core import DataDescription

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PROBE_CLIPS = 4


def saved_bytes_per_clip(model: torch.nn.Module, clip_shape: tuple[int, ...], num_classes: int) -> float:
    """Bytes autograd keeps for backward per clip, measured on a micro-batch of ``PROBE_CLIPS``."""
    storages: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    clips = torch.randn(PROBE_CLIPS, *clip_shape)
    labels = torch.randint(num_classes, (PROBE_CLIPS,))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        loss = F.cross_entropy(model(clips), labels)
    activations = sum(size for ptr, size in storages.items() if ptr not in params)
    loss.backward()
    return activations / PROBE_CLIPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu-gib", type=float, default=4.0, help="memory of the GPU to plan for")
    parser.add_argument("--headroom", type=float, default=0.6, help="fraction of it activations may use")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=video_folder")
    args = parser.parse_args()
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("fit", overrides=["experiment=video", *args.overrides])
    size = cfg.data.get("frame_size", 32)
    num_classes = 4  # the head's size hardly changes the memory; no need to index a video folder for it
    shape = (cfg.data.clip_len, 3, size, size)
    description = DataDescription(item_shape=shape, classes=tuple(str(c) for c in range(num_classes)))
    model = instantiate(cfg.model, data=description.as_dict(), _convert_="all")
    per_clip = saved_bytes_per_clip(model, shape, num_classes)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    budget = args.gpu_gib * 2**30 * args.headroom - 4 * weights  # weights, gradients, two Adam moments
    global_batch = cfg.data.global_batch_size
    fitting = max(1, int(budget // per_clip))
    micro = max(m for m in range(1, global_batch + 1) if global_batch % m == 0 and m <= fitting)
    print(f"clip: {cfg.data.clip_len} frames x 3 x {size} x {size}, model widths {list(cfg.model.net.widths)}")
    print(f"activation memory per training clip: {per_clip / 2**20:.2f} MiB (float32, saved for backward)")
    print(
        f"parameters: {weights / 2**20:.2f} MiB; about {fitting} clips fit in {args.headroom:.0%} of {args.gpu_gib} GiB"
    )
    print(
        f"on a {args.gpu_gib:g} GiB GPU: data.global_batch_size={global_batch} data.micro_batch_size={micro}"
        f" (accumulate {global_batch // micro} micro-batches per optimizer step)"
    )


if __name__ == "__main__":
    main()
