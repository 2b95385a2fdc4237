"""Building a run from its config (DataModule, model, Trainer), and a trained run from its checkpoint."""
