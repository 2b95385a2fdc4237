"""Independent sentences of every length, batched by length without masks (a packed LSTM):
next-word prediction and topic classification, with a loss exact under any split of a global batch.

``TERMS``: words that say this task, besides its name and its own class and function names;
neither the shared files nor another task's use them.
"""

TERMS = ("global_batch_tokens", "micro_batch_tokens", "token budget", "length-grouped", "packed")
