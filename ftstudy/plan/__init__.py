"""The planner: peak memory, tokens and time of one experiment × method × hardware before a run (token
statistics from `prepare`'s manifests or the registry's estimates), checked against runs and published figures.

May import: core, config, data."""
