"""Files the tool reads and writes: one rule for each, used by every interface.

* Reading: only regular files (a FIFO or a device would hang or never end), with clear errors.
* Writing: atomic (temporary file, then rename or link), with the permissions the umask gives a
  new file, never onto one of the run's inputs, and never over an existing file unless asked,
  checked at the moment of the write.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from artstyle.errors import ArtstyleError


def check_regular_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` as a Path if it is an existing regular file (after links); else ArtstyleError."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ArtstyleError(f"{p}: no such file") from None
    except PermissionError:
        raise ArtstyleError(f"{p}: permission denied") from None
    except OSError as e:
        raise ArtstyleError(f"{p}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ArtstyleError(f"{p}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise ArtstyleError(f"{p}: is not a regular file (a pipe, socket or device); give a {what}")
    return p


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MB pieces (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name one file (through links, ``..`` or hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_not_input(p: Path, protect: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse ``p`` when it names one of ``protect`` (an input of the run), existing or not."""
    for q in protect:
        if same_file(p, q):
            raise ArtstyleError(f"{p}: is one of the inputs; the result must go to another file")


def _umask() -> int:
    """The process's umask (read without changing it where Linux shows it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # (elsewhere: set and restore, under a lock)
        old = os.umask(0o022)
        os.umask(old)
    return old


_UMASK_LOCK = threading.Lock()


class OutputExistsError(ArtstyleError):
    """An output would replace a file the user has (before the run, or one that appeared while it
    worked) and ``--overwrite`` was not given: nothing was replaced. The one no-clobber message."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(f"{path}: already exists; pass --overwrite to replace it")
        self.path = Path(path)


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    overwrite: bool = True,
    protect: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, so no reader sees
    half a file, with the permissions the umask gives a new file (0644 under umask 022).

    The one no-clobber rule of every file the tool writes, applied at the moment of the write:
    ``path`` naming one of ``protect`` (the inputs) is refused always; an existing ``path`` is
    replaced only with ``overwrite`` (without it the final step is a hard link, which fails if
    the name exists, so a file created meanwhile by someone else is never lost:
    OutputExistsError).
    """
    p = Path(path)
    check_not_input(p, protect)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        # A short temporary name: a legal 255-byte file name must still have room for it.
        fd, tmp = tempfile.mkstemp(prefix=".artstyle-", suffix=".part", dir=parent)
    except OSError as e:
        raise ArtstyleError(f"{p}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise OutputExistsError(p) from None
            except OSError:  # a file system without hard links: the check is then not atomic
                if p.exists() or p.is_symlink():
                    raise OutputExistsError(p) from None
                os.replace(tmp, p)
    except OSError as e:
        raise ArtstyleError(f"{p}: cannot write ({e.strerror or e})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
