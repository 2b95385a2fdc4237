"""What every task's LightningModule builds on: optimisation from config, and metrics exact under any split."""
