"""The `ftstudy` command line: `main` (the click group, importing each verb module explicitly) and one module per
group of verbs; each command imports its work lazily and carries an `Example:` in its help.

May import: everything."""
