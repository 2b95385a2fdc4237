"""The embedded default corpus: independent sentences of long-tailed length, each drawn from one topic.

A sentence picks a topic (some topics are more common than others), a number of words
(a discretised log-normal: median about 14, a tail past 100), then its words: the
first from the topic's word distribution, each next one either a likely successor of
the word before (a sparse "syntax" shared by all topics, probability ``syntax``) or a
fresh topic word; ``<eos>`` ends it. So a next-word model has structure to learn
(successors, and the topic it infers as it reads), and the topic is a label a sentence
classifier can learn from the words. Both have exact references, since the process
is known: the best possible perplexity (:meth:`SentenceProcess.floor_nll`) and the best
possible accuracy (:meth:`SentenceProcess.bayes_topics`). Drawn in about a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lightning_template.tasks.sentences.corpus import EOS, UNK, Sentences

SUCCESSORS = 4  # likely next words of each word


@dataclass(frozen=True)
class SentenceProcess:
    """The generating process's tables, fixed by a seed (see the module docstring)."""

    topic_prior: np.ndarray  # (topics,)
    topic_words: np.ndarray  # (topics, vocab): P(word | topic), zero on <unk> and <eos>
    successors: np.ndarray  # (vocab, SUCCESSORS): word ids
    successor_probs: np.ndarray  # (vocab, SUCCESSORS)
    syntax: float
    length_pmf: np.ndarray  # P(words = n), n = 0 .. max_words (zero at 0)

    @classmethod
    def create(
        cls,
        seed: int,
        *,
        vocab_size: int = 2000,
        num_topics: int = 8,
        words_per_topic: int = 400,
        own_share: float = 0.4,
        syntax: float = 0.4,
        length_median: float = 13.5,
        length_sigma: float = 0.7,
        max_words: int = 150,
    ) -> SentenceProcess:
        rng = np.random.default_rng([seed, 0x5E7])
        words = np.arange(2, vocab_size)  # 0 is <unk>, 1 is <eos>
        prior = 1.0 / np.arange(1, num_topics + 1) ** 0.8
        background = np.zeros(vocab_size)
        background[words] = 1.0 / np.arange(1, len(words) + 1)
        topic_words = np.zeros((num_topics, vocab_size))
        for topic in range(num_topics):
            own = rng.choice(words, size=min(words_per_topic, len(words)), replace=False)
            topic_words[topic, own] = 1.0 / np.arange(1, len(own) + 1) ** 0.9
            topic_words[topic] = own_share * topic_words[topic] / topic_words[topic].sum()
            topic_words[topic] += (1 - own_share) * background / background.sum()
        successors = rng.choice(words, size=(vocab_size, SUCCESSORS))
        successor_probs = rng.dirichlet(np.ones(SUCCESSORS), size=vocab_size)
        # words = floor(X) + 1 with X log-normal, at most max_words
        scale = length_sigma * math.sqrt(2)
        cdf = [0.5 * (1 + math.erf(math.log(n / length_median) / scale)) for n in range(1, max_words + 1)]
        pmf = np.diff(np.concatenate([[0.0, 0.0], cdf]))
        pmf[-1] += 1.0 - pmf.sum()
        return cls(prior / prior.sum(), topic_words, successors, successor_probs, syntax, pmf)

    @property
    def vocab_size(self) -> int:
        return self.topic_words.shape[1]

    @property
    def words(self) -> list[str]:
        return [UNK, EOS, *(f"w{i}" for i in range(2, self.vocab_size))]

    def sample(self, count: int, seed: int) -> Sentences:
        """``count`` sentences (token ids ending in ``<eos>``) labelled with their topics."""
        rng = np.random.default_rng([seed, 0x5E8])
        topics = rng.choice(len(self.topic_prior), size=count, p=self.topic_prior)
        lengths = rng.choice(len(self.length_pmf), size=count, p=self.length_pmf)
        # inverse CDF sampling of every sentence's topic word at once: topic t's CDF is shifted by t
        cumulative = np.cumsum(self.topic_words, axis=1)
        cumulative /= cumulative[:, -1:]
        shifted = (cumulative + np.arange(len(cumulative))[:, None]).ravel()
        words = np.zeros((count, lengths.max()), dtype=np.int64)
        for position in range(lengths.max()):
            draws = rng.random((3, count))
            topic_word = np.searchsorted(shifted, draws[0] + topics) - topics * self.vocab_size
            if position == 0:
                words[:, 0] = topic_word
                continue
            previous = words[:, position - 1]
            pick = (np.cumsum(self.successor_probs[previous], axis=1) < draws[1][:, None]).sum(axis=1)
            successor = self.successors[previous, np.minimum(pick, SUCCESSORS - 1)]
            words[:, position] = np.where(draws[2] < self.syntax, successor, topic_word)
        sentences = [np.append(row[:n], 1) for row, n in zip(words, lengths, strict=True)]
        return Sentences.from_lists(sentences, topics)

    def _word_log_likelihoods(self, data: Sentences) -> np.ndarray:
        """``log P(word | previous word, topic)`` of every word (not ``<eos>``), shape ``(words, topics)``."""
        starts = np.zeros(len(data.tokens), dtype=bool)
        starts[data.offsets[:-1]] = True
        words = np.ones(len(data.tokens), dtype=bool)
        words[data.offsets[1:] - 1] = False
        token = data.tokens
        previous = np.roll(token, 1)
        follows = ((self.successors[previous] == token[:, None]) * self.successor_probs[previous]).sum(axis=1)
        topic = self.topic_words[:, token].T  # (tokens, topics)
        probability = np.where(starts[:, None], topic, self.syntax * follows[:, None] + (1 - self.syntax) * topic)
        return np.log(probability[words])

    def bayes_topics(self, data: Sentences) -> np.ndarray:
        """The most probable topic of each sentence under the true process: the best any classifier can do."""
        loglik = self._word_log_likelihoods(data)
        word_counts = data.lengths - 1
        per_sentence = np.add.reduceat(loglik, np.concatenate([[0], np.cumsum(word_counts)[:-1]]), axis=0)
        return np.argmax(per_sentence + np.log(self.topic_prior), axis=1)

    def floor_nll(self, data: Sentences) -> np.ndarray:
        """The true process's NLL of every next-word target (each sentence's tokens after its first).

        The topic is unknown to a reader: the best prediction mixes the topics by their
        posterior given the words so far, and predicts ``<eos>`` by the length's hazard.
        """
        loglik = self._word_log_likelihoods(data)  # (words, topics), sentence by sentence
        word_counts = data.lengths - 1
        first = np.concatenate([[0], np.cumsum(word_counts)[:-1]])
        seen = np.cumsum(loglik, axis=0) - loglik  # log-likelihood of the words before each word...
        seen -= np.repeat(seen[first], word_counts, axis=0)  # ...of its own sentence only
        log_post = seen + np.log(self.topic_prior)
        log_post -= np.logaddexp.reduce(log_post, axis=1, keepdims=True)
        predictive = np.logaddexp.reduce(log_post + loglik, axis=1)  # log P(word | words before), topic mixed out
        position = np.arange(len(loglik)) - np.repeat(first, word_counts)  # words seen before this one
        survival = 1.0 - np.concatenate([[0.0], np.cumsum(self.length_pmf)])  # P(words >= n)
        hazard = self.length_pmf / np.maximum(survival[:-1], 1e-300)  # P(words == n | words >= n)
        # targets: words 1.. of each sentence (after n words were read, another comes), then <eos>
        is_target = position > 0
        word_nll = -(predictive[is_target] + np.log1p(-hazard[position[is_target]]))
        eos_nll = -np.log(hazard[word_counts])
        ends = np.cumsum(word_counts - 1)  # where each sentence's targets end, to insert its <eos>
        return np.insert(word_nll, ends, eos_nll)
