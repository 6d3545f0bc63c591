"""Decontamination: benchmark items loaded as each harness loads them (`items`), long shared n-grams between
training rows and items (`ngrams`), and the check `prepare` and `ftstudy decontaminate` run (`check`).

May import: core, config, the rest of data."""
