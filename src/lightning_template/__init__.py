"""A PyTorch Lightning template where any split of a global batch trains the same model."""

from lightning_template import moved

__version__ = "0.1.0"

moved.install()
