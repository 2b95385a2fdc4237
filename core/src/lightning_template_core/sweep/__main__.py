"""``python -m lightning_template_core.sweep``, the twin of the ``sweep`` console script."""

from lightning_template_core.sweep.cli import main

main()
