"""The video classifier: a per-frame network and a GRU over the frames (embedded synthetic videos, a folder of files).

``TERMS``: words that say this task, besides its name and its own class and function names;
neither the shared files nor another task's use them.
"""

TERMS = ("PyAV", "GRU", "UCF101", "HMDB51")
