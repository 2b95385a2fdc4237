"""``python -m lightning_template.sweep``, the twin of the ``sweep`` console script."""

from lightning_template.sweep.cli import main

main()
