"""Two objectives on the same length-grouped sentence batches: next-word prediction and topic classification.

The training loss is exact under any split of a global batch: a micro-batch returns the
*sum* of its losses divided by the count of the whole global batch (tokens for the
next-word model, sentences for the classifier) over every rank and accumulation step
(``GlobalBatchModule.global_mean``). Averaging each micro-batch on its own would weight
the tokens of small micro-batches more, and micro-batches of sentences never hold the
same number of tokens.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence
from torchmetrics import Metric

from lightning_template.tasks.sentences.data import SentenceBatch
from lightning_template_core import DataDescription, ExactMean, GlobalBatchModule, OptimizerFactory, UserError


class PaddingShare(Metric):
    """Padded slots over real tokens, over an epoch's micro-batches and every rank. A metric, so that a run
    resumed mid-epoch counts the whole epoch (the core carries metric states in its checkpoints)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("padded", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("real", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, padded: int, real: int) -> None:
        self.padded += padded  # host numbers, added on the device: no device read
        self.real += real

    def compute(self) -> Tensor:
        return self.padded / self.real


class SentenceModule(GlobalBatchModule):
    """What both objectives share: the packed network, the exact loss, the logged counts.

    A subclass says what one micro-batch's losses are (:meth:`losses`: one per token or
    per sentence), how many of them its global batch holds (:meth:`global_count`) and
    how many tokens the network reads of a sentence (:meth:`tokens_read`) and of a
    global batch (:meth:`global_tokens_read`).

    ``train/tokens`` is the number of tokens of each step's global batch; ``train/padding``
    is, per epoch, the padded slots of the micro-batches over their real tokens: the
    memory the padded tensors waste (no compute: the network packs them away).
    """

    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/loss", "train/tokens", "train/padding")

    def __init__(
        self,
        data: DataDescription,
        net: Callable[..., nn.Module],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "step",
        scheduler_monitor: str | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(data, optimizer, scheduler, scheduler_interval, scheduler_monitor)
        self.net = net(vocab_size=self.data.vocab_size)
        if compile:
            self.net.compile()
        self.val_loss, self.test_loss = ExactMean(), ExactMean()
        self.train_padding = PaddingShare()

    @abstractmethod
    def losses(self, batch: SentenceBatch) -> Tensor:
        """One loss per token or per sentence of the micro-batch, unreduced."""

    @abstractmethod
    def global_count(self, batch: SentenceBatch) -> int:
        """How many losses the whole global batch holds (every rank and accumulation step)."""

    def tokens_read(self, lengths: np.ndarray) -> np.ndarray:
        """Tokens the network reads of each sentence."""
        return lengths

    def global_tokens_read(self, batch: SentenceBatch) -> int:
        return batch.global_tokens

    def training_step(self, batch: SentenceBatch, batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        read = self.tokens_read(batch.lengths)  # host numbers: no device read
        self.train_padding.update(int(len(read) * read.max() - read.sum()), int(read.sum()))
        self.log_step_metric("train/loss", losses.mean().detach())
        self.log_step_metric("train/tokens", float(self.global_tokens_read(batch)))
        return self.global_mean(losses.sum(), self.global_count(batch))

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metric("train/padding", self.train_padding)

    def evaluate(self, batch: SentenceBatch, split: str) -> None:
        getattr(self, f"{split}_loss").update(self.losses(batch))

    def log_evaluation(self, split: str) -> Tensor:
        """Log ``<split>/loss`` (exact over every rank) and return it."""
        metric: ExactMean = getattr(self, f"{split}_loss")
        loss = metric.compute()
        metric.reset()
        self.log(f"{split}/loss", loss, sync_dist=True, reduce_fx="max")  # equal on every rank already
        return loss


class NextWordModel(SentenceModule):
    """Predicts each next token of a sentence from the tokens before it; the loss is per token.

    Each sentence's first token is only read, and its ``<eos>`` only predicted, so a
    sentence of ``n`` tokens gives ``n - 1`` targets.
    """

    # logged at each validation: fit and sweep check their metric against it before training
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/ppl")

    def __init__(self, data: DataDescription, net: Callable[..., nn.Module], **kwargs: Any) -> None:
        super().__init__(data, net, **kwargs)
        self.decoder = nn.Linear(self.net.hidden_size, self.data.vocab_size)

    def tokens_read(self, lengths: np.ndarray) -> np.ndarray:
        return lengths - 1

    def global_tokens_read(self, batch: SentenceBatch) -> int:
        return batch.global_tokens - batch.global_sentences

    def global_count(self, batch: SentenceBatch) -> int:
        return self.global_tokens_read(batch)

    def losses(self, batch: SentenceBatch) -> Tensor:
        lengths = torch.from_numpy(batch.lengths - 1)
        outputs, _ = self.net(batch.tokens[:, :-1], lengths)
        # packed with the same lengths, the targets line up with the outputs token for token
        targets = pack_padded_sequence(batch.tokens[:, 1:], lengths, batch_first=True, enforce_sorted=False)
        return F.cross_entropy(self.decoder(outputs.data), targets.data, reduction="none")

    def log_evaluation(self, split: str) -> Tensor:
        loss = super().log_evaluation(split)
        self.log(f"{split}/ppl", loss.exp(), prog_bar=split == "val", sync_dist=True, reduce_fx="max")
        return loss


class TopicClassifier(SentenceModule):
    """Classifies a sentence from the LSTM state after its last token; the loss is per sentence."""

    # logged at each validation: fit and sweep check their metric against it before training
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/acc")

    def __init__(self, data: DataDescription, net: Callable[..., nn.Module], **kwargs: Any) -> None:
        super().__init__(data, net, **kwargs)
        if self.data.num_classes < 2:
            raise UserError(
                "The topic classifier needs labelled sentences of at least 2 classes: use data with labels"
                " (data.labels=true and `label<TAB>sentence` lines), or the next-word model (model=sentences_lm)."
            )
        self.classifier = nn.Linear(self.net.hidden_size, self.data.num_classes)
        self.val_acc, self.test_acc = ExactMean(), ExactMean()

    def global_count(self, batch: SentenceBatch) -> int:
        return batch.global_sentences

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Class logits ``(sentences, classes)``."""
        _, final = self.net(tokens, lengths)
        return self.classifier(final)

    def losses(self, batch: SentenceBatch) -> Tensor:
        logits = self(batch.tokens, torch.from_numpy(batch.lengths))
        return F.cross_entropy(logits, batch.labels, reduction="none")

    def evaluate(self, batch: SentenceBatch, split: str) -> None:
        logits = self(batch.tokens, torch.from_numpy(batch.lengths))
        getattr(self, f"{split}_loss").update(F.cross_entropy(logits, batch.labels, reduction="none"))
        getattr(self, f"{split}_acc").update((logits.argmax(dim=1) == batch.labels).double())

    def log_evaluation(self, split: str) -> Tensor:
        loss = super().log_evaluation(split)
        metric: ExactMean = getattr(self, f"{split}_acc")
        self.log(f"{split}/acc", metric.compute(), prog_bar=split == "val", sync_dist=True, reduce_fx="max")
        metric.reset()
        return loss
