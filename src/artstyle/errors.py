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
