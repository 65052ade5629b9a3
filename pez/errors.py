"""User-facing errors.

A :class:`PezError` describes bad input in one sentence that says what is wrong and how to fix it. The CLI
prints it as a single line and exits with code 2; library users can catch it like any ``ValueError``.
"""


class PezError(ValueError):
    """Bad input: the message is one line, meant to be shown to the user as is."""
