"""Start-up and memory against the size of the data a user brings: they must not grow with it.

For each kind of data file the project's tasks read and each size, the data is generated
in a temporary folder in its documented layout and deleted after; what is measured is
said above each function that measures it (and in the task's page). Each measurement
runs in a fresh process: its peak RSS is that process's own, imports included (the
"imports only" line is the floor every row starts from).

    python scripts/bench_data_scale.py            # every kind, at its default sizes
    python scripts/bench_data_scale.py --help     # the kinds and their sizes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MEASURE = """
import json, resource, sys, time
began = time.perf_counter()  # the body sets it again after its imports
BODY
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=time.perf_counter() - began, peak_rss_mb=peak, **extra)))
"""


def measured(body: str) -> dict:
    """Run ``body`` (which sets ``extra``) in a fresh interpreter: its seconds (after the imports) and peak RSS."""
    out = subprocess.run([sys.executable, "-c", MEASURE.replace("BODY", body)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def remove_folder(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# >>> lm
def write_corpus(root: Path, tokens: int, seed: int = 0, line: int = 20) -> None:
    """train.txt of ``tokens`` words (with <eos>: lines of ``line - 1`` words), valid and test 1/50 of it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(10_000)])
    root.mkdir(parents=True)
    for name, count in (("train.txt", tokens), ("valid.txt", min(tokens // 50, 1_000_000)), ("test.txt", None)):
        count = count if count is not None else min(tokens // 50, 1_000_000)
        with (root / name).open("w") as handle:
            for start in range(0, count, 1_000_000):
                rows = min(1_000_000, count - start) // line
                words = vocabulary[np.minimum(rng.zipf(1.2, (rows, line - 1)), 10_000) - 1]
                handle.write("\n".join(" ".join(row) for row in words) + "\n")


FIT_PEAK = """
import resource, subprocess, sys, time
began = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode:
    sys.exit(done.stdout[-2000:] + done.stderr[-3000:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{time.perf_counter() - began} {rss}")
"""


def fit_ddp(root: Path, run_dir: Path) -> tuple[float, float]:
    """Wall seconds of a 1-step DDP fit on the corpus, and the peak RSS (MB) of its largest rank."""
    command = [
        sys.executable, "-m", "lightning_template_core.fit", "experiment=lm_ptb", f"data.root={root}",
        "trainer=ddp_cpu",
        "trainer.devices=2", "trainer.max_steps=1", "trainer.limit_val_batches=0", "test_after_fit=false",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", FIT_PEAK, *command], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-5000:])
    seconds, rss = out.stdout.split()
    return float(seconds), float(rss)


def bench_corpora(counts: list[int], work: Path) -> list[dict]:
    """Corpora in the PTB layout: the token cache's build (tokens/s, size, peak RSS); a 1-step DDP fit on 2 CPU
    processes with the cache absent (cold: the fit builds it) and present (warm): the command's wall time and the
    peak RSS of its largest rank."""
    rows = []
    build = (
        "from pathlib import Path\n"
        "from lightning_template.tasks.lm.corpus import read_corpus\n"
        "began = time.perf_counter()\n"
        "corpus = read_corpus(Path(ROOT))\n"
        "extra = dict(tokens=int(sum(len(ids) for ids in corpus.splits.values())))"
    )
    for count in counts:
        root = work / f"corpus{count}"
        write_corpus(root, count)
        cold_seconds, cold_rss = fit_ddp(root, work / f"run{count}-cold")  # builds the cache in the fit
        remove_folder(root / ".cache")
        built = measured(build.replace("ROOT", repr(str(root))))
        warm_seconds, warm_rss = fit_ddp(root, work / f"run{count}-warm")
        rows.append(
            {
                "data": f"{count:,} tokens",
                "text MB": folder_size_mb(root) - folder_size_mb(root / ".cache"),
                "cache MB": folder_size_mb(root / ".cache"),
                "build s": built["seconds"],
                "tokens/s": built["tokens"] / built["seconds"],
                "build peak RSS MB": built["peak_rss_mb"],
                "fit cold s": cold_seconds,
                "fit cold peak RSS MB": cold_rss,
                "fit warm s": warm_seconds,
                "fit warm peak RSS MB": warm_rss,
            }
        )
        remove_folder(root)
    return rows


# <<< lm
# >>> cnn
def write_images(root: Path, count: int, seed: int = 0) -> None:
    """``count`` noisy JPEG photos-to-be of 160-320 pixels a side in 10 class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for i in range(count):
        width, height = rng.integers(160, 321, 2)
        tile = np.roll(base, int(rng.integers(64)), axis=1)
        pixels = np.tile(tile, (height // 64 + 1, width // 64 + 1, 1))[:height, :width]
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=85)


def bench_images(counts: list[int], image_size: int, work: Path) -> list[dict]:
    """Image folders of JPEGs: the first read decodes into the cache (images/s, size, peak RSS), the second maps it."""
    rows = []
    read = (
        "from pathlib import Path\n"
        "from lightning_template.tasks.cnn.image_folder import read_image_folder\n"
        "began = time.perf_counter()\n"
        f"folder = read_image_folder(Path(ROOT), {image_size}, 0, 0.1, 0.1)\n"
        "extra = dict(images=len(folder.labels))"
    )
    for count in counts:
        root = work / f"images{count}"
        write_images(root, count)
        cold = measured(read.replace("ROOT", repr(str(root))))
        warm = measured(read.replace("ROOT", repr(str(root))))
        rows.append(
            {
                "data": f"{count:,} JPEGs -> {image_size}px",
                "source MB": folder_size_mb(root) - folder_size_mb(root / ".cache"),
                "cache MB": folder_size_mb(root / ".cache"),
                "cold s": cold["seconds"],
                "items/s": count / cold["seconds"],
                "cold peak RSS MB": cold["peak_rss_mb"],
                "warm s": warm["seconds"],
                "warm peak RSS MB": warm["peak_rss_mb"],
            }
        )
        remove_folder(root)
    return rows


# <<< cnn


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    formatted = [[f"{row[c]:,.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in formatted)) for i, c in enumerate(columns)]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in formatted:
        print(" | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def data_kinds(args: argparse.Namespace) -> list[tuple[str, Callable[[Path], list[dict]]]]:
    """(what, how it is measured) for each kind of data file this project's tasks read, at the sizes asked."""
    kinds = []
    # >>> lm
    if args.tokens:
        kinds.append(("corpora", lambda work: bench_corpora(args.tokens, work)))
    # <<< lm
    # >>> cnn
    if args.images:
        kinds.append(("image folders", lambda work: bench_images(args.images, args.image_size, work)))
    # <<< cnn
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # >>> lm
    parser.add_argument("--tokens", type=int, nargs="*", default=[10**6, 10**7, 10**8], help="corpus sizes")
    # <<< lm
    # >>> cnn
    parser.add_argument("--images", type=int, nargs="*", default=[1000, 10000], help="image folder sizes")
    parser.add_argument("--image-size", type=int, default=64)
    # <<< cnn
    benches = data_kinds(parser.parse_args())
    if not benches:
        parser.exit(message="This project's tasks read no data files to measure.\n")
    floor = measured("import lightning.pytorch, torch\nextra = {}")
    print(f"imports only: peak RSS {floor['peak_rss_mb']:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="bench-data-scale-") as work:
        for what, bench in benches:
            began = time.perf_counter()
            rows = bench(Path(work))
            print(f"\n{what} ({time.perf_counter() - began:.0f} s in all)")
            print_table(rows)
    print(f"(this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
