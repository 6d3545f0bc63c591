"""Shared plumbing that knows nothing about fine-tuning: `UserError`, atomic writes (`fsio`), the one
subprocess executor (`runner`), lock files, size-capped YAML, the one schema-checked reader and strict writer
of the JSON files ftstudy reads back (`checked_json`, schemas in `file_schemas/`), the pinned tool environments,
and where the bundled data and the registry live (`bundled`).

May import: nothing else from ftstudy (the bottom stage)."""
