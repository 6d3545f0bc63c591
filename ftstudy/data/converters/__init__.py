"""Converters: one hub row in, the row Axolotl reads out (pure functions, no I/O), per row shape; `common`
holds the shared ones and the dispatch, the others a family of sources each.

May import: core, config, and data's row errors and row formats."""
