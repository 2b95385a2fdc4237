"""The word-level LSTM language model, trained by truncated BPTT (an embedded topic corpus, PTB, WikiText-2).

``TERMS``: words that say this task, besides its name and its own class and function names;
a project baked without it must hold none of them (template/bake.py checks).
"""

TERMS = ("lstm", "ptb", "wikitext", "wikitext2", "bptt", "perplexity", "language model", "language modelling")
