"""The error a user can fix: a bad option, a missing or malformed file, a dataset or store that cannot be
read. Its message names the value or path and says what to do; `repro` prints it as one line and exits 2,
pytest as one usage error. Anything else is a bug and shows its traceback.

It is a ValueError, so code that catches bad values (and tests that expect ValueError) keeps working.
"""


class UserError(ValueError):
    """Bad input: an option, a file or a dataset the user gave. The message says what was wrong and what to do."""


class MissingFile(UserError, FileNotFoundError):
    """A file the user named does not exist (also a FileNotFoundError, for code that catches that)."""
