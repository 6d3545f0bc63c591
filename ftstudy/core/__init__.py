"""Shared plumbing that knows nothing about fine-tuning: `UserError`, atomic writes (`fsio`), the one
subprocess executor (`runner`), lock files, size-capped YAML, the pinned tool environments, and where the
bundled data and the registry live (`bundled`).

May import: nothing else from ftstudy (the bottom stage)."""
