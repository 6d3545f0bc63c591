"""Scoring one model: serving, `bench` and its harnesses (dispatched by name), ftstudy's own scorers, the code
sandbox, self-describing result records and bootstrap statistics.

May import: core, config, data, plan, train."""
