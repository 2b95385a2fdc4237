"""DataModules of independent sentences: the embedded topic corpus and a folder of sentence files.

A global batch is sized in sentences (``data.global_batch_size``, split by
``data.micro_batch_size``) or in padded tokens (``data.global_batch_tokens``, split by
``data.micro_batch_tokens``): set one of the two global sizes, and null the other.
Training batches are length-grouped (see ``grouping``); evaluation reads every sentence
once over all ranks, shortest first, ``eval_batch_size`` sentences at a time.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import NamedTuple

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from lightning_template.tasks.sentences.corpus import SentenceCorpus, Sentences, read_sentence_folder
from lightning_template.tasks.sentences.grouping import (
    LengthGroupedBatchSampler,
    SentenceRequest,
    cut_by_count,
    cut_by_tokens,
    length_order,
)
from lightning_template.tasks.sentences.synthetic import SentenceProcess
from lightning_template_core import (
    BatchLayout,
    DataDescription,
    EvalBatchSampler,
    FileDataModule,
    GlobalBatchDataModule,
    ResumableLoader,
    SampleKey,
    UserError,
    check_sizes,
    checked_splits,
)

TOKEN_KEYS = ("data.global_batch_tokens", "data.micro_batch_tokens")


class SentenceBatch(NamedTuple):
    """A micro-batch: ``tokens (sentences, longest)`` padded with 0, each sentence's length and label.

    The lengths stay on the host (a numpy array, which Lightning does not move): the
    padding figures are host arithmetic and packing reads them there, so a training step
    never reads them back from the device. ``global_sentences`` and
    ``global_tokens`` count the whole global batch over every rank and accumulation step
    (0 in evaluation): the loss divides by them.
    """

    tokens: Tensor
    lengths: np.ndarray
    labels: Tensor
    global_sentences: int
    global_tokens: int


class SentenceDataset(Dataset):
    """Serves :class:`SentenceRequest` (training) or lists of :class:`SampleKey` (evaluation) as batches."""

    def __init__(self, sentences: Sentences) -> None:
        self.sentences = sentences

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitems__(self, request: SentenceRequest | list[SampleKey]) -> SentenceBatch:
        if isinstance(request, SentenceRequest):
            indices, global_sentences, global_tokens = request
        else:
            indices, global_sentences, global_tokens = [key.index for key in request], 0, 0
        rows = [torch.from_numpy(self.sentences.sentence(i)) for i in indices]
        return SentenceBatch(
            tokens=pad_sequence(rows, batch_first=True),
            lengths=np.array([len(row) for row in rows], dtype=np.int64),
            labels=torch.from_numpy(self.sentences.labels[list(indices)]),
            global_sentences=global_sentences,
            global_tokens=global_tokens,
        )


def unigram_nll(train: Sentences, test: Sentences, vocab_size: int) -> np.ndarray:
    """NLL of each next-word target of ``test`` under the training split's add-one unigram."""
    counts = np.zeros(vocab_size, dtype=np.float64)
    for start in range(0, len(train.tokens), 1 << 24):  # a chunk at a time: the tokens may be a mapped cache
        counts += np.bincount(train.tokens[start : start + (1 << 24)], minlength=vocab_size)
    counts += 1.0
    first = np.zeros(len(test.tokens), dtype=bool)
    first[test.offsets[:-1]] = True
    return -np.log(counts[test.tokens[~first]] / counts.sum())


class SentenceDataModule(GlobalBatchDataModule):
    """Length-grouped training batches and in-order evaluation over :class:`Sentences`.

    Subclasses read the splits (:meth:`load`). ``max_length`` cuts longer sentences
    (``<eos>`` included) so that one long line cannot blow a token budget.
    """

    def __init__(
        self,
        *,
        global_batch_size: int | None = None,
        global_batch_tokens: int | None = None,
        micro_batch_size: int | None = None,
        micro_batch_tokens: int | None = None,
        eval_batch_size: int | None = 64,
        max_length: int = 160,
        **kwargs,
    ) -> None:
        self.by_tokens = global_batch_tokens is not None
        if self.by_tokens == (global_batch_size is not None):
            raise UserError(
                f"data.global_batch_size={global_batch_size} and data.global_batch_tokens={global_batch_tokens}: set"
                " exactly one. Size a global batch in sentences (data.global_batch_size=32), or in padded tokens"
                " (data.global_batch_size=null data.global_batch_tokens=2048)."
            )
        wrong_micro = micro_batch_size if self.by_tokens else micro_batch_tokens
        if wrong_micro is not None:
            right, wrong = ("micro_batch_tokens", "micro_batch_size")
            if not self.by_tokens:
                right, wrong = wrong, right
            raise UserError(
                f"data.{wrong}={wrong_micro} does not fit a global batch sized by"
                f" {'tokens' if self.by_tokens else 'sentences'}: set data.{right} instead (and data.{wrong}=null)."
            )
        if not isinstance(max_length, int) or max_length < 2:
            raise UserError(f"data.max_length={max_length!r} must be an integer >= 2 (a word and <eos>).")
        if not isinstance(eval_batch_size, int) or eval_batch_size < 1:
            raise UserError(f"data.eval_batch_size={eval_batch_size!r} must be a positive number of sentences.")
        # the core's layout counts tokens when the global batch is sized by tokens
        super().__init__(
            global_batch_size=global_batch_tokens if self.by_tokens else global_batch_size,
            micro_batch_size=micro_batch_tokens if self.by_tokens else micro_batch_size,
            eval_batch_size=eval_batch_size,
            **kwargs,
        )
        self.max_length = max_length
        self.corpus: SentenceCorpus | None = None
        self.references: dict[str, float] = {}
        self._cut: tuple[int, list[np.ndarray]] | None = None

    @abstractmethod
    def load(self) -> SentenceCorpus:
        """The three splits (``train``, ``val``, ``test``), their words and class names."""

    def reference_metrics(self, corpus: SentenceCorpus) -> dict[str, float]:
        """Test metrics of predictors that know the data's process (a floor, a best accuracy), if known."""
        return {}

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        corpus = self.load()
        train, test = corpus.splits["train"], corpus.splits["test"]
        unigram = unigram_nll(train, test, len(corpus.words))
        self.references = {"ppl_unigram": float(np.exp(unigram.mean()))}
        if train.has_labels:
            majority = np.bincount(train.labels, minlength=len(corpus.classes)).argmax()
            self.references["acc_majority"] = float(np.mean(test.labels == majority))
        self.references.update(self.reference_metrics(corpus))
        self.corpus = corpus

    def describe(self) -> DataDescription:
        self.setup()
        return DataDescription(item_shape=(), vocabulary=tuple(self.corpus.words), classes=tuple(self.corpus.classes))

    def test_references(self) -> dict[str, float]:
        return self.references

    def resolve_layout(self, world_size: int, accumulate_grad_batches: int | None = None) -> BatchLayout:
        if not self.by_tokens:
            return super().resolve_layout(world_size, accumulate_grad_batches)
        self.layout = BatchLayout.resolve(
            self.global_batch_size, self.micro_batch_size, world_size, accumulate_grad_batches,
            keys=TOKEN_KEYS, unit="tokens",
        )  # fmt: skip
        return self.layout

    def global_batches(self) -> list[np.ndarray]:
        """The training split cut into global batches (once per size: the cut is the same on every layout)."""
        if self._cut is None or self._cut[0] != self.global_batch_size:
            lengths = self.corpus.splits["train"].lengths
            cut = cut_by_tokens if self.by_tokens else cut_by_count
            batches, left_out = cut(lengths, self.global_batch_size, self.seed)
            if left_out:
                rank_zero_info(f"Training data: {left_out} sentence(s) left out to keep every global batch whole.")
            self._cut = (self.global_batch_size, batches)
        return self._cut[1]

    def train_dataloader(self) -> ResumableLoader:
        rank, _ = self.rank_and_world()
        sampler = LengthGroupedBatchSampler(
            self.global_batches(),
            self.corpus.splits["train"].lengths,
            self.current_layout(),
            rank,
            seed=self.seed,
            shuffle=self.training_shuffle(),
            size_key=TOKEN_KEYS[0] if self.by_tokens else "data.global_batch_size",
        )
        rank_zero_info(f"Training data: {sampler.describe()}")
        return self.resumable_loader(SentenceDataset(self.corpus.splits["train"]), sampler)

    def _eval_loader(self, split: str) -> DataLoader:
        sentences = self.corpus.splits[split]
        rank, world = self.rank_and_world()
        sampler = EvalBatchSampler(length_order(sentences.lengths, 0), self.eval_batch_size, rank, world)
        return self.eval_loader(SentenceDataset(sentences), sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


class SyntheticSentenceDataModule(SentenceDataModule):
    """The embedded default: topic sentences drawn from ``seed`` in about a second (see ``synthetic``).

    ``test/ppl_floor`` and ``test/acc_bayes`` are the true process's perplexity and
    accuracy on the test split: no model does better.
    """

    def __init__(
        self,
        *,
        num_train: int = 24_000,
        num_val: int = 2_000,
        num_test: int = 2_000,
        vocab_size: int = 2000,
        num_topics: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.sizes = checked_splits(num_train, num_val, num_test)
        check_sizes("data", vocab_size=vocab_size, num_topics=num_topics)
        try:
            self.process = SentenceProcess.create(
                self.seed, vocab_size=vocab_size, num_topics=num_topics, max_words=self.max_length - 1
            )
        except ValueError as err:
            raise UserError(
                f"data.vocab_size={vocab_size} and data.num_topics={num_topics} do not make a sentence corpus"
                f" ({err}): each topic needs words of its own. Change them together (the shipped values are 2000"
                " and 8)."
            ) from err

    def load(self) -> SentenceCorpus:
        splits = {name: self.process.sample(count, seed=self.seed * 3 + i) for i, (name, count) in
                  enumerate(self.sizes.items())}  # fmt: skip
        classes = [f"topic{t}" for t in range(len(self.process.topic_prior))]
        return SentenceCorpus(splits, self.process.words, classes)

    def reference_metrics(self, corpus: SentenceCorpus) -> dict[str, float]:
        test = corpus.splits["test"]
        return {
            "ppl_floor": float(np.exp(self.process.floor_nll(test).mean())),
            "acc_bayes": float(np.mean(self.process.bayes_topics(test) == test.labels)),
        }


class SentenceFilesDataModule(FileDataModule, SentenceDataModule):
    """Sentence files under ``root`` (see ``corpus``); ``labels=true`` reads a label on every line."""

    def __init__(
        self, *, labels: bool = False, vocab_size: int | None = None, cache_dir: str | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if self.download:
            raise UserError(
                "data.download=true: sentence folders are your own files, there is nothing to fetch. Set"
                " data.download=false and point data.root at the folder."
            )
        self.labels = labels
        self.vocab_size = vocab_size
        self.cache_dir = cache_dir

    def load(self) -> SentenceCorpus:
        corpus, cut = read_sentence_folder(
            self.root,
            labels=self.labels,
            max_length=self.max_length,
            vocab_size=self.vocab_size,
            cache_dir=self.cache_dir,
        )
        if cut:
            rank_zero_info(f"Sentence files: {cut} line(s) longer than data.max_length={self.max_length} were cut.")
        return corpus
