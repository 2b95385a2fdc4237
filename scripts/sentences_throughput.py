"""Training throughput of the sentences task: what length grouping and packing buy, and which buys what.

The task batches sentences of about one length together (``grouping``) and packs them
so the LSTM never computes padding (``net.PackedLSTM``). This measures both choices
against the usual alternative, for both objectives (next-word and topic), on the
embedded corpus (``configs/data/sentences_synthetic.yaml``), with the shipped network
(embedding 128, hidden 256) and optimizer (Adam, lr 3e-3; no schedule, which costs nothing):

  A   length-grouped batches of --batch-size sentences, packed (the task as it trains);
  A'  length-grouped batches cut by a budget of --batch-tokens padded tokens, packed
      (an extra row: its batches hold other sentence counts);
  B   random batches of --batch-size sentences (a seeded permutation, cut), padded, through
      a plain nn.LSTM over the whole padded tensor, the loss masked to real tokens (or, for
      topics, taken at each sentence's last real token): correct, but it computes the padding;
  C   the same random batches, packed: C/B is what packing buys, A/C what grouping buys.

Each step is the task's own: ``model.losses(batch)`` (the packed variants) or the baseline's,
summed, divided by their count, backward, optimizer step. Batches are collated before the
clock starts (the same ``pad_sequence`` for all). Tokens count every token of a sentence,
``<eos>`` included; padding is the padded slots of the batches over their real tokens. The
variants run interleaved, --round steps at a time, so that they see the same machine load;
all start from the same weights, and the padded baseline's loss is checked against the
packed model's on one batch first.

    python scripts/sentences_throughput.py [--steps 30] [--warmup 5] [--threads 2] [--num-train 24000]
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from lightning_template.tasks.sentences.data import SentenceBatch, SentenceDataset, SyntheticSentenceDataModule
from lightning_template.tasks.sentences.grouping import SentenceRequest, cut_by_count, cut_by_tokens
from lightning_template.tasks.sentences.module import NextWordModel, SentenceModule, TopicClassifier
from lightning_template.tasks.sentences.net import PackedLSTM
from lightning_template_core._command_line.hydra_command import CONFIG_DIR

EMBEDDING_SIZE, HIDDEN_SIZE, LR = 128, 256, 3e-3  # configs/model/sentences_lm.yaml and sentences_topic.yaml
OBJECTIVES = {"next-word": NextWordModel, "topic": TopicClassifier}


class PaddedBaseline(nn.Module):
    """The usual alternative to packing: an LSTM over every slot of the padded tensor, padding masked out after.

    Correct (the padding comes after a sentence's real tokens, so it never reaches them),
    but the embedding, LSTM and, for next-word, the decoder all run on the padded slots.
    """

    def __init__(self, vocab_size: int, outputs: int, per_token: bool) -> None:
        super().__init__()
        self.per_token = per_token
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_SIZE)
        self.lstm = nn.LSTM(EMBEDDING_SIZE, HIDDEN_SIZE, batch_first=True)
        self.head = nn.Linear(HIDDEN_SIZE, outputs)

    def losses(self, batch: SentenceBatch) -> Tensor:
        """Per-token (next-word) or per-sentence (topic) losses, as the packed model's ``losses``."""
        tokens, lengths = batch.tokens, batch.lengths
        if self.per_token:
            tokens, targets, lengths = tokens[:, :-1], tokens[:, 1:], lengths - 1
        outputs, _ = self.lstm(self.embedding(tokens))  # (sentences, longest, hidden), padding included
        if self.per_token:
            losses = F.cross_entropy(self.head(outputs).flatten(0, 1), targets.flatten(), reduction="none")
            real = torch.arange(tokens.shape[1], device=tokens.device) < lengths[:, None]
            return losses[real.flatten()]
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
        return F.cross_entropy(self.head(outputs.gather(1, last).squeeze(1)), batch.labels, reduction="none")

    def copy_from(self, model: SentenceModule) -> None:
        """Take the packed model's weights, so both start alike and their losses can be compared."""
        self.embedding.load_state_dict(model.net.embedding.state_dict())
        self.lstm.load_state_dict(model.net.lstm.state_dict())
        head = model.decoder if self.per_token else model.classifier
        self.head.load_state_dict(head.state_dict())


@dataclass
class Variant:
    """One way of batching and running: its batches (warm-up first), model, optimizer and clock."""

    name: str
    batches: list[SentenceBatch]
    model: nn.Module
    optimizer: torch.optim.Optimizer = field(init=False)
    seconds: float = 0.0
    done: int = 0

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)

    def step(self, batch: SentenceBatch) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.model.losses(batch)
        (losses.sum() / losses.numel()).backward()
        self.optimizer.step()


def load_datamodule(num_train: int, seed: int) -> SyntheticSentenceDataModule:
    """The embedded corpus with the shipped data config, only ``num_train`` changed."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data" / "sentences_synthetic.yaml"))
    kwargs = {key: value for key, value in cfg.items() if key not in ("defaults", "_target_")}
    datamodule = SyntheticSentenceDataModule(**{**kwargs, "num_train": num_train, "seed": seed})
    datamodule.setup("fit")
    return datamodule


def pick(batches: list[np.ndarray], count: int, seed: int) -> list[np.ndarray]:
    """``count`` batches in a seeded random order (as the sampler shuffles an epoch), wrapping if too few."""
    order = np.random.default_rng([seed, 0xBE7]).permutation(len(batches))
    return [batches[order[i % len(order)]] for i in range(count)]


def collate(dataset: SentenceDataset, indices: np.ndarray, device: torch.device) -> SentenceBatch:
    lengths = dataset.sentences.lengths
    batch = dataset.__getitems__(SentenceRequest(tuple(indices.tolist()), len(indices), int(lengths[indices].sum())))
    return batch._replace(
        tokens=batch.tokens.to(device), lengths=batch.lengths.to(device), labels=batch.labels.to(device)
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_objective(objective: str, datamodule, index_sets: dict[str, list[np.ndarray]], args, device) -> list[Variant]:
    """Train every variant ``--warmup`` then ``--steps`` steps, interleaved; return them with their clocks."""
    data = datamodule.describe()
    dataset = SentenceDataset(datamodule.corpus.splits["train"])
    net = functools.partial(PackedLSTM, embedding_size=EMBEDDING_SIZE, hidden_size=HIDDEN_SIZE)
    torch.manual_seed(args.seed)
    reference = OBJECTIVES[objective](data, net, optimizer=functools.partial(torch.optim.Adam, lr=LR))
    variants = []
    for name, indices in index_sets.items():
        batches = [collate(dataset, batch, device) for batch in indices]
        if name.startswith("B"):
            outputs = data.vocab_size if objective == "next-word" else data.num_classes
            model = PaddedBaseline(data.vocab_size, outputs, per_token=objective == "next-word")
            model.copy_from(reference)
        else:
            model = OBJECTIVES[objective](data, net, optimizer=functools.partial(torch.optim.Adam, lr=LR))
            model.load_state_dict(reference.state_dict())
        variants.append(Variant(name, batches, model.to(device).train()))
    by_letter = {variant.name[:2]: variant for variant in variants}
    packed, padded = by_letter["C "].model, by_letter["B "].model  # the same random batches, the same weights
    with torch.no_grad():
        first = by_letter["B "].batches[0]
        a, b = packed.losses(first).sum().item(), padded.losses(first).sum().item()
    if abs(a - b) > 1e-4 * abs(a):
        raise AssertionError(f"{objective}: padded baseline loss {b} differs from the packed model's {a}")
    for variant in variants:
        for batch in variant.batches[: args.warmup]:
            variant.step(batch)
    sync(device)
    for start in range(0, args.steps, args.round):
        for variant in variants:
            chunk = variant.batches[args.warmup + start : args.warmup + min(start + args.round, args.steps)]
            sync(device)
            began = time.perf_counter()
            for batch in chunk:
                variant.step(batch)
            sync(device)
            variant.seconds += time.perf_counter() - began
            variant.done += len(chunk)
    return variants


def report(objective: str, variants: list[Variant], warmup: int) -> None:
    """One row per variant: sentences/s, tokens/s, padding, and tokens/s relative to B."""
    rows = []
    for variant in variants:
        timed = variant.batches[warmup : warmup + variant.done]
        lengths = [batch.lengths.cpu() for batch in timed]
        sentences = sum(len(x) for x in lengths)
        tokens = sum(int(x.sum()) for x in lengths)
        padded = sum(len(x) * int(x.max()) for x in lengths) - tokens
        rows.append((variant.name, sentences / variant.seconds, tokens / variant.seconds, padded / tokens))
    baseline = next(row[2] for row in rows if row[0].startswith("B"))
    print(f"\n{objective}")
    print(f"  {'variant':44s} {'sentences/s':>11s} {'tokens/s':>9s} {'padding':>8s} {'tokens/s vs B':>13s}")
    for name, sentences, tokens, padding in rows:
        print(f"  {name:44s} {sentences:11.0f} {tokens:9.0f} {padding:8.1%} {tokens / baseline:12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps per variant first")
    parser.add_argument("--round", type=int, default=10, help="steps a variant runs before the next one's turn")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch (A, B, C)")
    parser.add_argument("--batch-tokens", type=int, default=1024, help="padded-token budget per batch (A')")
    parser.add_argument("--num-train", type=int, default=24_000, help="training sentences of the corpus")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objectives", nargs="+", choices=tuple(OBJECTIVES), default=list(OBJECTIVES))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    began = time.perf_counter()

    datamodule = load_datamodule(args.num_train, args.seed)
    lengths = datamodule.corpus.splits["train"].lengths
    count = args.warmup + args.steps
    grouped, _ = cut_by_count(lengths, args.batch_size, args.seed)
    budgeted, _ = cut_by_tokens(lengths, args.batch_tokens, args.seed)
    shuffled = np.random.default_rng([args.seed, 0x7A4D]).permutation(len(lengths))
    random_batches = list(shuffled[: len(shuffled) // args.batch_size * args.batch_size].reshape(-1, args.batch_size))
    random_picked = pick(random_batches, count, args.seed)
    index_sets = {
        f"A  length-grouped, packed ({args.batch_size} sentences)": pick(grouped, count, args.seed),
        f"B  random, padded + masked ({args.batch_size} sentences)": random_picked,
        f"C  random, packed ({args.batch_size} sentences)": random_picked,
        f"A' length-grouped, packed (<= {args.batch_tokens} tokens)": pick(budgeted, count, args.seed),
    }
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device_name}")
    print(
        f"corpus: {len(lengths)} training sentences, vocab {len(datamodule.corpus.words)}, tokens per sentence"
        f" median {np.median(lengths):.0f}, mean {lengths.mean():.1f}, max {lengths.max()};"
        f" {args.warmup} warm-up + {args.steps} timed steps per variant, in rounds of {args.round}"
    )
    for objective in args.objectives:
        report(objective, run_objective(objective, datamodule, index_sets, args, device), args.warmup)
    print(f"\nwall time {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
