"""Networks and LightningModules for the reference tasks."""
