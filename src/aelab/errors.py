"""The one exception type for mistakes a user can make (bad flag, bad file, missing data).

The CLI prints its message as a single line and exits with code 2; anything else that escapes is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one clear line."""


class TrainingInterrupted(Exception):
    """Ctrl-C during training, raised after the last checkpoint is safely on disk."""
