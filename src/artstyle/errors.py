"""The one exception type for errors a user can cause, and how its message names a setting.

A message that asks the user to change a setting names it with :func:`setting` (``f"lower
{setting('size')}"``); the error carries the name, and each interface words it
(:meth:`ArtstyleError.worded`): the command line as its flag (``--size``), the studio as its field's
label, Python as the keyword itself (``str(error)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_OPEN, _CLOSE = "\ue000", "\ue001"  # (private-use characters: never in a message of their own)
_MARKED = re.compile(f"{_OPEN}([a-z_0-9]+){_CLOSE}")


def setting(name: str) -> str:
    """``name`` (a :class:`~artstyle.config.StyleConfig` field, or an option such as ``overwrite``)
    marked in a message, for each interface to word."""
    return f"{_OPEN}{name}{_CLOSE}"


class ArtstyleError(Exception):
    """An error caused by the user's input or environment, with a message written for a person.

    Interfaces print it on one line in their own words (:meth:`worded`) and exit non-zero;
    tracebacks are for bugs only. ``str(error)`` names settings as Python's keywords; formatting
    it into another message (``f"{error}; ..."``) keeps them marked, so the new error words them
    too.
    """

    @property
    def marked(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def settings(self) -> list[str]:
        """The settings the message names."""
        return _MARKED.findall(self.marked)

    def worded(self, word: Callable[[str], str]) -> str:
        """The message with each setting named by ``word(name)``."""
        return _MARKED.sub(lambda m: word(m.group(1)), self.marked)

    def __str__(self) -> str:
        return self.worded(lambda name: name)

    def __format__(self, spec: str) -> str:
        return format(self.marked, spec)


def flag(name: str) -> str:
    """A setting as the command line's flag: ``max_memory`` -> ``--max-memory``."""
    return "--" + name.replace("_", "-")


class NonFiniteLossError(ArtstyleError):
    """The loss became NaN or infinite; ``last_good`` holds the last image with a finite loss."""

    def __init__(self, message: str, last_good: object | None = None) -> None:
        super().__init__(message)
        self.last_good = last_good


class StorageError(ArtstyleError):
    """A file could not be written or removed for a reason of the disk's, not the request's: it is
    full (``full``) or read-only / not permitted. The studio answers 507 or 503 with it."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    @property
    def full(self) -> bool:
        import errno

        return self.errno in (errno.ENOSPC, errno.EDQUOT)


def storage_error(where: object, e: OSError, doing: str = "cannot write") -> StorageError:
    """``e`` as one line: ``WHERE: cannot write (No space left on device)``."""
    return StorageError(f"{where}: {doing} ({e.strerror or e})", e.errno)
