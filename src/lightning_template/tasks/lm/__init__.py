"""The word-level LSTM language model, trained by truncated BPTT (an embedded topic corpus, PTB, WikiText-2).

``TERMS``: words that say this task, besides its name and its own class and function names;
neither the shared files nor another task's use them.
"""

TERMS = ("ptb", "wikitext", "wikitext2", "bptt")
