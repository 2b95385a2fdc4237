"""A command's command line: composed and checked before Hydra runs, and the tables a command prints."""
