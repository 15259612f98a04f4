"""Where a layer that has something to say for a person (a download, a retry) says it: a ``Log``
callable that the interface provides (the CLI writes above its progress bar). The core never
prints."""

from __future__ import annotations

from collections.abc import Callable

#: Takes one message for a person.
Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A Log that says nothing (the default)."""


def to_terminal(message: str) -> None:
    """A Log for a command's user: one line on stderr, above any progress bar."""
    import sys

    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
