"""A PyTorch Lightning template where any split of a global batch trains the same model."""

from lightning_template import moved, stop_before_training

__version__ = "0.1.0"

moved.install()
stop_before_training.install()  # only in a process started as one of the commands
