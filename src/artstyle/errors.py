"""The one exception type for errors a user can cause."""

from __future__ import annotations


class ArtstyleError(Exception):
    """An error caused by the user's input or environment, with a message written for a person.

    Interfaces print ``str(error)`` on one line and exit non-zero; tracebacks are for bugs only.
    """


class NonFiniteLossError(ArtstyleError):
    """The loss became NaN or infinite; ``last_good`` holds the last image with a finite loss."""

    def __init__(self, message: str, last_good: object | None = None) -> None:
        super().__init__(message)
        self.last_good = last_good
