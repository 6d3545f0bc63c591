"""The one base of ftstudy's expected failures: the CLI shows them as a clear message, never a traceback."""


class UserError(Exception):
    """Something the user can fix (a typo, a missing file or environment, a failed tool): the message says how."""
