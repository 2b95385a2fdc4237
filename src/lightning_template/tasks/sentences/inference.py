"""The trained sentence models outside training: classify the lines of text files, sample a sentence, export.

``predict`` (the topic classifier) reads text files as training reads them: one sentence
per line, strict UTF-8, blank lines skipped, a label before a tab ignored, words the
model does not know read as ``<unk>``, lines cut to ``data.max_length`` tokens. Each line
is an input named ``<file>:<line>``. ``generate`` (the next-word model) continues a
prompt word by word until ``<eos>`` ends the sentence or ``words`` are drawn. ``export``
writes the network over a padded batch of ``data.max_length`` columns and each
sentence's length: the LSTM reads left to right, so the outputs at a sentence's real
positions do not depend on the padding after them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from lightning_template.tasks.sentences.corpus import EOS, UNK, read_lines
from lightning_template.tasks.sentences.module import NextWordModel, TopicClassifier
from lightning_template_core import ExportSpec, Generated, TaskInference, UserError, visible_files

PAD = -1  # fills a predict input's row after its sentence; its length is the count of the rest


class PaddedSentences(nn.Module):
    """The trained network as a serving stack calls it: token ids ``(batch, columns)`` and lengths ``(batch,)``.

    Returns class logits ``(batch, classes)`` for the classifier, next-word logits
    ``(batch, columns, vocabulary)`` for the next-word model (those after a sentence's
    length mean nothing).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model.net
        self.head = model.classifier if isinstance(model, TopicClassifier) else model.decoder
        self.per_sentence = isinstance(model, TopicClassifier)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        lstm = self.net.lstm
        # an explicit zero state, sized from the input, keeps the batch dimension free when exported
        state = tokens.new_zeros((lstm.num_layers, tokens.shape[0], lstm.hidden_size), dtype=lstm.weight_ih_l0.dtype)
        outputs, _ = lstm(self.net.embedding(tokens), (state, state))
        outputs = self.net.norm(outputs)
        if self.per_sentence:
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
            outputs = outputs.gather(1, last).squeeze(1)
        return self.head(outputs)


class SentenceInference(TaskInference):
    """Classification of text lines, sampling a sentence, and the export of either model."""

    @property
    def max_length(self) -> int:
        return int(self.cfg.data.max_length)

    def _ids(self, words: list[str]) -> tuple[list[int], list[str]]:
        """Word ids, unknown words as ``<unk>``, and those unknown words."""
        index = {word: i for i, word in enumerate(self.description.vocabulary)}
        return [index.get(word, index[UNK]) for word in words], [word for word in words if word not in index]

    def input_files(self, path: Path) -> list[Path]:
        if not isinstance(self.model, TopicClassifier):
            raise self._unsupported("predict")
        return visible_files(path)

    def input_help(self) -> str:
        return (
            "The sentence classifier reads text files, one sentence per line (UTF-8; a label before a tab is ignored)."
        )

    def read_input(self, path: Path) -> Iterator[tuple[str, Tensor]]:
        eos = self.description.vocabulary.index(EOS)
        for line in read_lines(path):
            ids, _ = self._ids(line.words[: self.max_length - 1])
            row = torch.full((self.max_length,), PAD, dtype=torch.int64)
            row[: len(ids) + 1] = torch.tensor([*ids, eos])
            yield f"{path}:{line.number}", row

    @torch.no_grad()
    def class_probabilities(self, inputs: Tensor) -> Tensor:
        lengths = (inputs != PAD).sum(dim=1)
        return torch.softmax(self.model(inputs.clamp(min=0), lengths).double(), dim=-1)

    @torch.no_grad()
    def generate(self, prompt: str | None, words: int, temperature: float, generator: torch.Generator) -> Generated:
        if not isinstance(self.model, NextWordModel):
            raise self._unsupported("generate")
        vocabulary = self.description.vocabulary
        notes = []
        if prompt is None:
            first = int(torch.randint(2, len(vocabulary), (1,), generator=generator))  # a word, not <unk> or <eos>
            ids, notes = [first], [f"no prompt: the sentence starts with {vocabulary[first]!r}, drawn from the seed"]
        else:
            ids, unknown = self._ids(prompt.split())
            if unknown:
                notes.append(f"not in the model's vocabulary, read as {UNK}: {', '.join(dict.fromkeys(unknown))}")
        eos = vocabulary.index(EOS)
        for _ in range(words):
            outputs, _ = self.model.net(torch.tensor([ids]), torch.tensor([len(ids)]))
            logits = self.model.decoder(outputs.data[-1]).double()
            word = int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator))
            if word == eos:
                notes.append(f"the sentence ended (<eos>) after {len(ids)} words")
                break
            ids.append(word)
        return Generated(" ".join(vocabulary[i] for i in ids) + "\n", notes)

    def export_spec(self) -> ExportSpec:
        if not isinstance(self.model, NextWordModel | TopicClassifier):
            raise UserError(f"export knows the sentence models NextWordModel and TopicClassifier, not {self.model}.")
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(len(self.description.vocabulary), (2, self.max_length), generator=generator)
        lengths = torch.tensor([self.max_length, 3])
        per_sentence = isinstance(self.model, TopicClassifier)
        columns = self.max_length
        outputs = (
            {"name": "logits", "shape": ["batch", len(self.description.classes)]}
            if per_sentence
            else {"name": "logits", "shape": ["batch", columns, len(self.description.vocabulary)]}
        )
        metadata = {
            "inputs": [
                {
                    "name": "tokens",
                    "shape": ["batch", columns],
                    "dtype": "int64",
                    "meaning": f"word ids of each sentence ending in {EOS}, then any id up to {columns} columns",
                },
                {
                    "name": "lengths",
                    "shape": ["batch"],
                    "dtype": "int64",
                    "meaning": f"tokens of each sentence, {EOS} included",
                },
            ],
            "outputs": [outputs],
            "vocabulary": list(self.description.vocabulary),
            "classes": list(self.description.classes) if per_sentence else [],
            "end_of_sentence": EOS,
            "unknown_word": UNK,
        }
        return ExportSpec(PaddedSentences(self.model), (tokens, lengths), metadata, ({0: "batch"}, {0: "batch"}))


INFERENCE = SentenceInference
