"""DataModules for word-level language modelling: the embedded topic corpus, PTB and WikiText-2.

Layout sizes count *streams*: ``global_batch_size`` training streams are split into
micro-batches of ``micro_batch_size`` streams per device, and each step reads one window
of ``bptt`` tokens from all of them. Evaluation reads ``eval_batch_size`` streams
(counted over all devices, so the value does not depend on how many there are).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_template.batching.datamodule import GlobalBatchDataModule, keep_batch
from lightning_template.batching.loader import ResumableLoader
from lightning_template.tasks.lm.streams import EvalStreamSampler, StreamBatchSampler, TokenStreams
from lightning_template.tasks.lm import corpus as corpora
from lightning_template.tasks.lm.synthetic import TopicProcess, unigram_nll
from lightning_template.errors import UserError


class TextDataModule(GlobalBatchDataModule):
    """Token streams for training and evaluation, plus reference perplexities for the test split.

    Subclasses provide the token ids of each split (:meth:`load_splits`). Training windows
    are ``bptt`` tokens (jittered per epoch with ``variable_bptt``); evaluation always uses
    fixed windows of ``bptt`` so its value does not change between epochs.
    """

    def __init__(
        self, *, bptt: int = 35, variable_bptt: bool = False, eval_batch_size: int | None = 10, **kwargs
    ) -> None:
        super().__init__(eval_batch_size=eval_batch_size, shuffle=False, **kwargs)
        if not isinstance(bptt, int) or bptt < 1:
            raise UserError(f"data.bptt={bptt!r} must be a positive integer (tokens per training window).")
        self.bptt = bptt
        self.variable_bptt = variable_bptt
        self.vocab_size: int | None = None
        self.datasets: dict[str, TokenStreams] = {}
        self.train_tokens: torch.Tensor | None = None
        self.reference: dict[str, float] = {}

    @abstractmethod
    def load_splits(self) -> tuple[dict[str, np.ndarray], int]:
        """Token ids of ``train``, ``valid`` and ``test``, and the vocabulary size."""

    def reference_nll(self, test_streams: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target NLL of reference predictors on the test streams (the module logs their perplexity)."""
        return {}

    @property
    def num_eval_streams(self) -> int:
        return self.eval_batch_size or self.global_batch_size

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits, self.vocab_size = self.load_splits()
        tokens = {name: torch.from_numpy(ids) for name, ids in splits.items()}
        self.train_tokens = tokens["train"]
        self.datasets = {
            "train": TokenStreams(tokens["train"], self.global_batch_size),
            "valid": TokenStreams(tokens["valid"], self.num_eval_streams),
            "test": TokenStreams(tokens["test"], self.num_eval_streams),
        }
        test_streams = self.datasets["test"].streams.numpy()
        unigram = unigram_nll(splits["train"], test_streams[:, 1:].ravel(), self.vocab_size)
        nll = {"ppl_unigram": unigram, **self.reference_nll(test_streams)}
        self.reference = {name: float(np.exp(values.mean())) for name, values in nll.items()}

    def train_dataloader(self) -> ResumableLoader:
        rank, _ = self._rank_and_world()
        if self.datasets["train"].num_streams != self.global_batch_size:  # changed since setup (the batch-size finder)
            self.datasets["train"] = TokenStreams(self.train_tokens, self.global_batch_size)
        sampler = StreamBatchSampler(
            self.datasets["train"].stream_length,
            self._checked_layout(),
            rank,
            self.bptt,
            seed=self.seed,
            variable_bptt=self.variable_bptt,
        )
        return self.resumable_loader(self.datasets["train"], sampler)

    def _eval_loader(self, split: str) -> DataLoader:
        rank, world = self._rank_and_world()
        dataset = self.datasets[split]
        sampler = EvalStreamSampler(dataset.num_streams, dataset.stream_length, self.bptt, rank, world)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=keep_batch, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


class SyntheticTextDataModule(TextDataModule):
    """The embedded default: a topic corpus drawn from ``seed`` (see ``synthetic_text``), no download.

    ``test/ppl_floor`` is the true process's perplexity on the test streams, each read
    from its start as the model reads it: no model can go below it.
    """

    def __init__(
        self,
        *,
        num_train: int = 200_000,
        num_valid: int = 20_000,
        num_test: int = 20_000,
        vocab_size: int = 360,
        num_chains: int = 3,
        num_topics: int = 12,
        mean_dwell: float = 150.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.sizes = {"train": num_train, "valid": num_valid, "test": num_test}
        self.process = TopicProcess.create(
            self.seed, vocab_size=vocab_size, num_chains=num_chains, num_topics=num_topics, mean_dwell=mean_dwell
        )

    def load_splits(self) -> tuple[dict[str, np.ndarray], int]:
        tokens = self.process.sample(sum(self.sizes.values()), self.seed)
        bounds = np.cumsum(list(self.sizes.values()))[:-1]
        return dict(zip(self.sizes, np.split(tokens, bounds), strict=True)), self.process.vocab_size

    def reference_nll(self, test_streams: np.ndarray) -> dict[str, np.ndarray]:
        return {"ppl_floor": self.process.stream_nll(test_streams)}


class TextFilesDataModule(TextDataModule):
    """A corpus in the PTB layout under ``root`` (``train.txt``, ``valid.txt``, ``test.txt``).

    ``corpus`` (``ptb`` or ``wikitext2``) only says what ``download=True`` fetches.
    """

    def __init__(self, *, corpus: str = "ptb", **kwargs) -> None:
        super().__init__(**kwargs)
        if corpus not in corpora.SOURCES:
            raise UserError(f"data.corpus={corpus!r} is not one of: {', '.join(corpora.SOURCES)}.")
        self.corpus = corpus

    def prepare_data(self) -> None:
        if self.download:
            corpora.download(self.root, self.corpus)

    def load_splits(self) -> tuple[dict[str, np.ndarray], int]:
        corpus = corpora.read_corpus(self.root, self.corpus)
        return corpus.splits, corpus.vocab_size
