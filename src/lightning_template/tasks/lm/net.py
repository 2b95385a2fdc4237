"""The language model's network: embedding, LSTM, decoder."""

from __future__ import annotations

from torch import Tensor, nn

from lightning_template_core import UserError, check_dropout, check_sizes

Hidden = tuple[Tensor, Tensor]


class LSTMNet(nn.Module):
    """Embedding, multi-layer LSTM, dropout, linear decoder (optionally sharing the embedding's weights)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 200,
        hidden_size: int = 200,
        num_layers: int = 2,
        dropout: float = 0.2,
        tie_weights: bool = True,
        norm: str = "none",
    ) -> None:
        check_sizes("model.net", embedding_size=embedding_size, hidden_size=hidden_size, num_layers=num_layers)
        check_dropout(dropout)
        super().__init__()
        if norm not in ("none", "layer"):
            raise UserError(f"model.net.norm={norm!r} is not one of: none, layer (LayerNorm on the LSTM output).")
        if tie_weights and embedding_size != hidden_size:
            raise UserError(
                f"model.net.tie_weights=true needs model.net.embedding_size ({embedding_size}) equal to"
                f" model.net.hidden_size ({hidden_size}): the decoder reuses the embedding matrix. Make them"
                " equal or set model.net.tie_weights=false."
            )
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(
            embedding_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0, batch_first=True
        )
        self.norm = nn.LayerNorm(hidden_size) if norm == "layer" else nn.Identity()
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, tokens: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """Logits ``(streams, length, vocab)`` and the final hidden state, for ``tokens (streams, length)``."""
        output, hidden = self.lstm(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(self.norm(output))), hidden
