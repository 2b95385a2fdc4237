"""Sweeps over batch size, learning rate and any other setting: local Optuna studies and W&B sweeps.

Both backends read the same file, written in W&B's sweep format, and train every trial
with its own ``fit`` process.
"""
