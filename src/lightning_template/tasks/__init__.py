"""The tasks: one package each (data, network, LightningModule), each on the core alone.

A task is found by convention (its package here, its configs named for it, its tests in
``tests/tasks/<task>/``): see ``docs/architecture.md``.
"""
