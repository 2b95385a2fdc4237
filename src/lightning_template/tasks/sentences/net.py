"""The sentence network: embedding and LSTM over packed sequences, so padding is never computed."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lightning_template_core import UserError, check_dropout, check_sizes


class PackedLSTM(nn.Module):
    """Embedding, multi-layer LSTM and dropout, reading each sentence up to its own length.

    The padded batch is packed *before* the embedding: only real tokens are embedded,
    each time step of the LSTM runs on the sentences still going, and each sentence's
    final state is that of its own last token. So no mask is needed anywhere, and a
    sentence's outputs do not depend on what it was batched with.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        norm: str = "none",
    ) -> None:
        check_sizes("model.net", embedding_size=embedding_size, hidden_size=hidden_size, num_layers=num_layers)
        check_dropout(dropout)
        super().__init__()
        if norm not in ("none", "layer"):
            raise UserError(f"model.net.norm={norm!r} is not one of: none, layer (LayerNorm on the LSTM output).")
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embedding_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0, batch_first=True
        )
        # per token (and per sentence state), so it mixes nothing across a batch
        self.norm = nn.LayerNorm(hidden_size) if norm == "layer" else nn.Identity()

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[PackedSequence, Tensor]:
        """Outputs of every real token (packed) and each sentence's final top-layer state ``(sentences, hidden)``.

        ``tokens (sentences, longest)`` is padded with anything; ``lengths`` says where each sentence ends
        (host lengths, as the training batches have them, are read where they are).
        """
        packed = pack_padded_sequence(tokens, lengths.cpu(), batch_first=True, enforce_sorted=False)
        embedded = packed._replace(data=self.drop(self.embedding(packed.data)))
        outputs, (final, _) = self.lstm(embedded)
        return outputs._replace(data=self.drop(self.norm(outputs.data))), self.drop(self.norm(final[-1]))
