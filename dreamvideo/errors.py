"""The one exception type for user mistakes: the CLI prints its message as one line, exit 2."""


class UserError(ValueError):
    """Bad input, flag, preset, file or device; the message names it and what is accepted."""
