"""The trained LSTM language model outside training: sample text; export the network with its state.

Words are the model's vocabulary (saved in the checkpoint); a prompt word it does not
know is read as ``<unk>`` where the vocabulary has it (PTB and WikiText-2 do) and left
out otherwise, each with a note. ``<eos>`` (end of sentence) is written as a line break.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_template.tasks.lm.corpus import EOS, UNK
from lightning_template_core import ExportSpec, Generated, TaskInference, UserError


class StatefulStep(nn.Module):
    """The network as a serving stack calls it: tokens and the state in, logits and the next state out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, tokens: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, (h, c) = self.net(tokens, (h, c))
        return logits, h, c


class TextInference(TaskInference):
    """Sampling from the word-level model, and its export."""

    def _prompt_ids(self, prompt: str | None, generator: torch.Generator) -> tuple[list[int], list[str]]:
        vocabulary = self.description.vocabulary
        index = {word: i for i, word in enumerate(vocabulary)}
        if prompt is None:
            if EOS in index:
                return [index[EOS]], []
            first = int(torch.randint(len(vocabulary), (1,), generator=generator))
            return [first], [f"no prompt: started from the word {vocabulary[first]!r}, drawn from the seed"]
        words = prompt.split()
        unknown = list(dict.fromkeys(word for word in words if word not in index))
        notes = []
        if unknown and UNK in index:
            notes.append(f"not in the model's vocabulary, read as {UNK}: {', '.join(unknown)}")
        elif unknown:
            notes.append(f"not in the model's vocabulary (which has no {UNK}), left out: {', '.join(unknown)}")
        ids = [index.get(word, index.get(UNK, -1)) for word in words]
        ids = [i for i in ids if i >= 0]
        if not ids:
            raise UserError(
                f"prompt={prompt!r}: none of its words is in the model's vocabulary ({len(vocabulary)} words, e.g."
                f" {', '.join(vocabulary[:5])}). Use words the model was trained on, or leave prompt out."
            )
        return ids, notes

    @torch.no_grad()
    def generate(self, prompt: str | None, words: int, temperature: float, generator: torch.Generator) -> Generated:
        ids, notes = self._prompt_ids(prompt, generator)
        logits, hidden = self.model(torch.tensor([ids]))
        sampled = []
        for _ in range(words):
            probabilities = torch.softmax(logits[0, -1].double() / temperature, dim=-1)
            word = int(torch.multinomial(probabilities, 1, generator=generator))
            sampled.append(word)
            logits, hidden = self.model(torch.tensor([[word]]), hidden)
        vocabulary = self.description.vocabulary
        text = " ".join(vocabulary[i] for i in ids + sampled).replace(f" {EOS} ", "\n").replace(EOS, "\n")
        return Generated(text.strip() + "\n", notes)

    def export_spec(self) -> ExportSpec:
        lstm = self.model.net.lstm
        state = torch.zeros(lstm.num_layers, 2, lstm.hidden_size, dtype=self.model.dtype)
        tokens = torch.randint(len(self.description.vocabulary), (2, 1), generator=torch.Generator().manual_seed(0))
        dtype = str(state.dtype).removeprefix("torch.")
        state_spec = {"shape": [lstm.num_layers, "batch", lstm.hidden_size], "dtype": dtype}
        metadata = {
            "inputs": [
                {"name": "tokens", "shape": ["batch", 1], "dtype": "int64", "meaning": "one word per call, its index"},
                {"name": "h", **state_spec, "meaning": "hidden state; zeros to start a text"},
                {"name": "c", **state_spec, "meaning": "cell state; zeros to start a text"},
            ],
            "outputs": [
                {"name": "logits", "shape": ["batch", 1, len(self.description.vocabulary)]},
                {"name": "h", **state_spec},
                {"name": "c", **state_spec},
            ],
            "vocabulary": list(self.description.vocabulary),
            "end_of_sentence": EOS,
            "unknown_word": UNK if UNK in self.description.vocabulary else None,
        }
        # one word per call (torch.export cannot vary the LSTM's length): feed h and c back for the next
        dynamic = ({0: "batch"}, {1: "batch"}, {1: "batch"})
        return ExportSpec(StatefulStep(self.model.net), (tokens, state, state.clone()), metadata, dynamic)


INFERENCE = TextInference
