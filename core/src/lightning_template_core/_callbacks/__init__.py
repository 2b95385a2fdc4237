"""Callbacks and loggers every run gets: the monitor's history, rank agreement, a CSV log that continues."""
