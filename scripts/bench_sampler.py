"""Per-epoch setup cost of the order-preserving batch shuffler on large datasets.

Target: an epoch starts (first micro-batch ready) in under 1 s for 10 million items.
Columns: cutting the blocks (once per run), the epoch start (set_epoch + first
micro-batch), and, for scale, computing all of this rank's micro-batches of an epoch
at once (what training spreads over the epoch, batch by batch).

    python scripts/bench_sampler.py [--items 10000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lightning_template_core import BatchLayout
from lightning_template_core._batching.sampler import OrderPreservingBatchSampler


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    group_lengths = rng.integers(60, 600, size=args.items // 300)
    group_starts = np.concatenate([[0], np.cumsum(group_lengths)[:-1]])
    cases = {
        "single items (block 1)": {"num_items": args.items, "block_size": 1},
        "grouped items (blocks of 16)": {
            "num_items": int(group_lengths.sum()),
            "block_size": 16,
            "group_starts": group_starts,
        },
    }
    layout = BatchLayout.resolve(512, 64, 4)  # micro 64 x accumulate 2 x 4 ranks
    print(f"{'case':36s} {'items':>12s} {'blocks':>10s} {'cut blocks':>11s} {'epoch start':>12s} {'whole epoch':>12s}")
    for name, kwargs in cases.items():
        start = time.perf_counter()
        sampler = OrderPreservingBatchSampler(layout=layout, rank=3, seed=0, **kwargs)
        construct = time.perf_counter() - start
        epochs = iter(range(1, 10**6))

        def epoch_start(sampler=sampler, epochs=epochs) -> None:
            sampler.set_epoch(next(epochs))
            next(iter(sampler))

        start = timed(epoch_start)
        whole = timed(lambda sampler=sampler, epochs=epochs: sampler.rank_micro_batches(next(epochs)))
        print(
            f"{name:36s} {kwargs['num_items']:12,d} {len(sampler.block_starts):10,d} {construct:10.3f}s"
            f" {start:11.3f}s {whole:11.3f}s"
        )
    print(f"\n{layout.describe()}, rank 3; best of 3 for the epoch columns")


if __name__ == "__main__":
    main()
