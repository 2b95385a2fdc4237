"""A token corpus with long-range structure whose best achievable perplexity is known exactly.

The vocabulary is split into ``num_chains`` blocks. Each block has a hidden "topic"
that follows its own slowly switching Markov chain (it keeps its topic for
``mean_dwell`` tokens on average, several windows of BPTT), and each topic favours a
few words of its block. Token ``t`` first picks a block, mostly the one after the
previous token's block (a local rhythm a model learns at once), then a word of that
block from the block's current topic. A model must remember which topic each block is
in, across window boundaries, to predict well: the test of carrying the hidden state.

Because the block of each token is visible, each chain is observed only through its own
block's words and the chains stay independent given the text: the forward algorithm,
run per chain, gives the exact probability of every token given all tokens before it
in its stream. Its mean negative log-likelihood is the floor no model can beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopicProcess:
    """The generating process: ``emissions[c, z]`` is block ``c``'s word distribution under topic ``z``."""

    emissions: np.ndarray  # (chains, topics, block words)
    switch_probability: float  # chance per token that a chain changes topic (to another, uniformly)
    rhythm: float  # chance that a token's block is the one after the previous token's block

    @classmethod
    def create(
        cls,
        seed: int,
        vocab_size: int = 360,
        num_chains: int = 3,
        num_topics: int = 12,
        mean_dwell: float = 150.0,
        topic_words: int = 10,
        topic_mass: float = 0.6,
        rhythm: float = 0.7,
    ) -> TopicProcess:
        block = vocab_size // num_chains
        if block < topic_words or num_topics < 2 or mean_dwell <= 1:
            raise ValueError("need vocab_size // num_chains >= topic_words, num_topics >= 2 and mean_dwell > 1")
        rng = np.random.default_rng([seed, 0x7E47])
        zipf = 1.0 / np.arange(1, block + 1)
        emissions = np.empty((num_chains, num_topics, block))
        for chain in range(num_chains):
            background = rng.permutation(zipf) / zipf.sum()
            for topic in range(num_topics):
                favoured = rng.choice(block, topic_words, replace=False)
                weights = np.zeros(block)
                weights[favoured] = rng.permutation(zipf[:topic_words]) / zipf[:topic_words].sum()
                emissions[chain, topic] = topic_mass * weights + (1 - topic_mass) * background
        return cls(emissions, 1.0 / mean_dwell, rhythm)

    @property
    def num_chains(self) -> int:
        return self.emissions.shape[0]

    @property
    def num_topics(self) -> int:
        return self.emissions.shape[1]

    @property
    def block(self) -> int:
        return self.emissions.shape[2]

    @property
    def vocab_size(self) -> int:
        return self.num_chains * self.block

    def _block_step_probabilities(self) -> np.ndarray:
        """P(block_t - block_{t-1} = offset mod chains) for offset 0..chains-1."""
        chains = self.num_chains
        if chains == 1:
            return np.ones(1)
        offsets = np.full(chains, (1 - self.rhythm) / (chains - 1))
        offsets[1 % chains] = self.rhythm
        return offsets

    def sample(self, num_tokens: int, seed: int) -> np.ndarray:
        """``num_tokens`` token ids, int64, drawn from the process started at its stationary state."""
        rng = np.random.default_rng([seed, 0x5A3])
        chains, topics = self.num_chains, self.num_topics
        switches = rng.random((chains, num_tokens)) < self.switch_probability
        jumps = np.where(switches, rng.integers(1, topics, (chains, num_tokens)), 0)
        topic = (rng.integers(0, topics, (chains, 1)) + np.cumsum(jumps, axis=1)) % topics
        steps = rng.choice(chains, num_tokens, p=self._block_step_probabilities())
        block = (rng.integers(0, chains) + np.cumsum(steps)) % chains
        cdf = np.cumsum(self.emissions, axis=2)
        rows = cdf[block, topic[block, np.arange(num_tokens)]]
        words = (rows < rng.random((num_tokens, 1))).sum(axis=1).clip(max=self.block - 1)
        return (block * self.block + words).astype(np.int64)

    def stream_nll(self, streams: np.ndarray) -> np.ndarray:
        """Exact ``-log p(token_t | tokens_<t of its stream)`` for ``t >= 1`` of each row of ``streams``.

        The forward algorithm per chain, vectorised over streams; shape ``(streams, length - 1)``.
        """
        num_streams, length = streams.shape
        chains, topics = self.num_chains, self.num_topics
        stay = 1 - self.switch_probability
        move = self.switch_probability / (topics - 1)
        block, word = np.divmod(streams, self.block)
        belief = np.full((num_streams, chains, topics), 1.0 / topics)
        step_probability = self._block_step_probabilities()
        rows = np.arange(num_streams)
        nll = np.empty((num_streams, length - 1))
        for t in range(length):
            likelihood = self.emissions[block[:, t], :, word[:, t]]  # (streams, topics)
            predicted = belief[rows, block[:, t]]
            p_word = (predicted * likelihood).sum(axis=1)
            if t:
                p_block = step_probability[(block[:, t] - block[:, t - 1]) % chains]
                nll[:, t - 1] = -np.log(p_block * p_word)
            belief[rows, block[:, t]] = predicted * likelihood / p_word[:, None]
            belief = stay * belief + move * (1 - belief)  # every chain moves on, observed or not
        return nll


def unigram_nll(train: np.ndarray, targets: np.ndarray, vocab_size: int) -> np.ndarray:
    """``-log p(target)`` under the add-one smoothed unigram distribution of ``train``."""
    return unigram_nll_of_counts(np.bincount(train, minlength=vocab_size), targets)


def unigram_nll_of_counts(counts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:func:`unigram_nll` from the training split's word counts (a token cache keeps them)."""
    smoothed = counts.astype(np.float64) + 1.0
    return -np.log(smoothed[targets] / smoothed.sum())
