"""A PyTorch Lightning template where any split of a global batch trains the same model."""

__version__ = "0.1.0"
