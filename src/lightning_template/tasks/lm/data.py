"""DataModules for word-level language modelling: the embedded topic corpus, PTB and WikiText-2.

Layout sizes count *streams*: ``global_batch_size`` training streams are split into
micro-batches of ``micro_batch_size`` streams per device, and each step reads one window
of ``bptt`` tokens from all of them. Evaluation reads ``eval_batch_size`` streams
(counted over all devices, so the value does not depend on how many there are).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from lightning_template.tasks.lm import corpus as corpora
from lightning_template.tasks.lm.streams import EvalStreamSampler, StreamBatchSampler, TokenStreams
from lightning_template.tasks.lm.synthetic import TopicProcess, unigram_nll_of_counts
from lightning_template_core import (
    DataDescription,
    FileDataModule,
    GlobalBatchDataModule,
    ResumableLoader,
    UserError,
    check_sizes,
    checked_splits,
)


class TextDataModule(GlobalBatchDataModule):
    """Token streams for training and evaluation, plus reference perplexities for the test split.

    Subclasses provide the token ids of each split (:meth:`load_splits`). Training windows
    are ``bptt`` tokens (jittered per epoch with ``variable_bptt``); evaluation always uses
    fixed windows of ``bptt`` so its value does not change between epochs.
    """

    def __init__(
        self,
        *,
        bptt: int = 35,
        variable_bptt: bool = False,
        eval_batch_size: int | None = 10,
        shuffle: bool = False,
        **kwargs,
    ) -> None:
        if shuffle:
            raise UserError(
                "data.shuffle=true: a language model's streams are read in order, each window continuing the"
                " last (the hidden state carries across them). Leave data.shuffle=false."
            )
        super().__init__(eval_batch_size=eval_batch_size, shuffle=False, **kwargs)
        if not isinstance(bptt, int) or bptt < 1:
            raise UserError(f"data.bptt={bptt!r} must be a positive integer (tokens per training window).")
        self.bptt = bptt
        self.variable_bptt = variable_bptt
        self.vocabulary: tuple[str, ...] = ()
        self.model_vocabulary: tuple[str, ...] = ()  # a trained model's, when evaluating one
        self.datasets: dict[str, TokenStreams] = {}
        self.train_tokens: np.ndarray | None = None
        self.references: dict[str, float] = {}

    @abstractmethod
    def load_splits(self) -> tuple[dict[str, np.ndarray], list[str]]:
        """Token ids of ``train``, ``val`` and ``test``, and the words they index."""

    def reference_nll(self, test_streams: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target NLL of reference predictors on the test streams (the module logs their perplexity)."""
        return {}

    def train_word_counts(self, train: np.ndarray) -> np.ndarray:
        """How often each word occurs in the training split (for the unigram reference)."""
        return np.bincount(train, minlength=len(self.vocabulary))

    @property
    def num_eval_streams(self) -> int:
        return self.eval_batch_size or self.global_batch_size

    def describe(self) -> DataDescription:
        self.setup()  # the vocabulary is known once the corpus is read
        return DataDescription(item_shape=(), vocabulary=self.vocabulary)

    def test_references(self) -> dict[str, float]:
        return self.references

    def adopt_description(self, description: DataDescription) -> None:
        """Read the text with a trained model's vocabulary (``evaluate``): ids must mean its words."""
        self.model_vocabulary = description.vocabulary

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits, words = self.load_splits()
        self.vocabulary = tuple(words)
        self.train_tokens = splits["train"]
        self.datasets = {
            "train": TokenStreams(splits["train"], self.global_batch_size),
            "val": TokenStreams(splits["val"], self.num_eval_streams),
            "test": TokenStreams(splits["test"], self.num_eval_streams),
        }
        test_streams = self.datasets["test"].streams
        unigram = unigram_nll_of_counts(self.train_word_counts(splits["train"]), test_streams[:, 1:].ravel())
        nll = {"ppl_unigram": unigram, **self.reference_nll(test_streams)}
        self.references = {name: float(np.exp(values.mean())) for name, values in nll.items()}

    def train_dataloader(self) -> ResumableLoader:
        rank, _ = self.rank_and_world()
        if self.datasets["train"].num_streams != self.global_batch_size:  # changed since setup (the batch-size finder)
            self.datasets["train"] = TokenStreams(self.train_tokens, self.global_batch_size)
        sampler = StreamBatchSampler(
            self.datasets["train"].stream_length,
            self.current_layout(),
            rank,
            self.bptt,
            seed=self.seed,
            variable_bptt=self.variable_bptt,
        )
        rank_zero_info(f"Training data: {sampler.describe()}")
        return self.resumable_loader(self.datasets["train"], sampler)

    def _streams_loader(self, split: str) -> DataLoader:
        rank, world = self.rank_and_world()
        dataset = self.datasets[split]
        sampler = EvalStreamSampler(dataset.num_streams, dataset.stream_length, self.bptt, rank, world)
        return self.eval_loader(dataset, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._streams_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._streams_loader("test")


class SyntheticTextDataModule(TextDataModule):
    """The embedded default: a topic corpus drawn from ``seed`` (see ``synthetic_text``), no download.

    ``test/ppl_floor`` is the true process's perplexity on the test streams, each read
    from its start as the model reads it: no model can go below it.
    """

    def __init__(
        self,
        *,
        num_train: int = 200_000,
        num_val: int = 20_000,
        num_test: int = 20_000,
        vocab_size: int = 360,
        num_chains: int = 3,
        num_topics: int = 12,
        mean_dwell: float = 150.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.sizes = checked_splits(num_train, num_val, num_test)
        check_sizes("data", vocab_size=vocab_size, num_chains=num_chains, num_topics=num_topics)
        try:
            self.process = TopicProcess.create(
                self.seed, vocab_size=vocab_size, num_chains=num_chains, num_topics=num_topics, mean_dwell=mean_dwell
            )
        except ValueError as err:
            raise UserError(
                f"data.vocab_size={vocab_size}, data.num_chains={num_chains}, data.num_topics={num_topics} and"
                f" data.mean_dwell={mean_dwell} do not make a topic corpus: {err}. Change them together (the"
                " shipped values are 360, 3, 12 and 150)."
            ) from err

    def load_splits(self) -> tuple[dict[str, np.ndarray], list[str]]:
        tokens = self.process.sample(sum(self.sizes.values()), self.seed)
        bounds = np.cumsum(list(self.sizes.values()))[:-1]
        words = [f"w{i}" for i in range(self.process.vocab_size)]
        return dict(zip(self.sizes, np.split(tokens, bounds), strict=True)), words

    def reference_nll(self, test_streams: np.ndarray) -> dict[str, np.ndarray]:
        return {"ppl_floor": self.process.stream_nll(test_streams)}


class TextFilesDataModule(FileDataModule, TextDataModule):
    """A corpus in the PTB layout under ``root`` (``train.txt``, ``valid.txt``, ``test.txt``).

    ``corpus`` (``ptb`` or ``wikitext2``) only says what ``download=True`` fetches.
    """

    def __init__(self, *, corpus: str = "ptb", cache_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if corpus not in corpora.SOURCES:
            raise UserError(f"data.corpus={corpus!r} is not one of: {', '.join(corpora.SOURCES)}.")
        self.corpus, self.cache_dir = corpus, cache_dir
        self._corpus: corpora.Corpus | None = None

    def prepare_data(self) -> None:
        if self.download:
            corpora.download(self.root, self.corpus)

    def load_splits(self) -> tuple[dict[str, np.ndarray], list[str]]:
        self._corpus = corpora.read_corpus(self.root, self.corpus, self.model_vocabulary, self.cache_dir)
        splits = dict(self._corpus.splits)
        splits["val"] = splits.pop("valid")  # the file is valid.txt; the split is val, as in every task
        return splits, self._corpus.words

    def train_word_counts(self, train: np.ndarray) -> np.ndarray:
        return self._corpus.train_counts  # counted once, when the corpus was tokenised
