"""DataModules and datasets for the reference tasks."""
