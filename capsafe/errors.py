"""capsafe's user errors: a mistake in what the user gave it, as opposed to a bug in it.

Every error that means "your config, data file, argument or folder is wrong" is a UserError
(ConfigError, DataFileError, RecipeError, EmptySetError, UnknownNameError, FolderBusyError,
RunConflictError, ...): the CLI prints it in one line, naming the field, file or line, and
exits 2. Anything else is a bug and keeps its traceback, with a line asking to report it.
A UserError is a ValueError, so callers that catch ValueError keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's input; the message says what and where."""


class UnitsFailed(Exception):
    """Units of work that still failed after their retries (on Ray: a fine-tuning run that
    ran out of memory each time, say). Everything else finished and is stored; the message
    names each unit and its error. Not a user error: the CLI prints it and exits 1."""
