"""The one exception type for user-facing errors.

The CLI catches `AutotrainError`, prints its message on one line and exits with code 2.
Anything else is an internal bug and keeps its traceback.
"""


class AutotrainError(Exception):
    """A problem the user can fix: bad config value, malformed data, impossible combination."""
