"""Training rows: row formats, converters, fetching and streaming sources with a seeded selection, `prepare`
and its manifests, token counts through Axolotl's preprocess, decontamination against benchmark items, and
staging benchmark data for offline machines.

May import: core, config."""
