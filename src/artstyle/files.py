"""Files the tool reads and writes: one rule for each, used by every interface.

* Reading: only regular files (a FIFO or a device would hang or never end), with clear errors.
* Writing: atomic (temporary file, then rename or link), with the permissions the umask gives a
  new file, never onto one of the run's inputs, and never over an existing file unless asked,
  checked at the moment of the write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from artstyle.errors import ArtstyleError, setting, storage_error


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


#: What the tool adds to an output's name for the files beside it (``OUT.png.state``, the longest
#: of ``.json`` and ``.state``; a checkpoint's ``.iter00000`` is checked where there are any).
BESIDE = ".state"


def check_name(p: Path, beside: str = BESIDE) -> None:
    """Refuse, before any work, an output whose own name, or its name with ``beside`` added (the
    files the tool keeps beside it), cannot exist on its file system (its name limit, usually 255
    bytes)."""
    parent = p.parent if str(p.parent) else Path(".")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    need = len(os.fsencode(p.name)) + len(beside)
    if need > limit:
        short = p.name[:24] + "..." + p.name[-12:]
        also = f" with the {beside} file beside it" if beside else ""
        raise ArtstyleError(
            f"{short}: file name too long: it needs {need} bytes{also} and this file system "
            f"allows {limit}; choose a shorter name"
        )


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
        super().__init__(f"{path}: already exists; pass {setting('overwrite')} to replace it")
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
    atomic_write_files({Path(path): data}, overwrite=overwrite, protect=protect)


def atomic_write_files(
    files: dict[Path, bytes], *, overwrite: bool = True, protect: Sequence[str | os.PathLike[str]] = ()
) -> None:
    """Write several files all or nothing (an image and its sidecar): every one is written to a
    temporary file first, then each is put in place; if one cannot be, those already put in place
    are taken back (a replaced file is restored) and the error is raised. The rules of
    :func:`atomic_write_bytes` hold for each."""
    for p in files:
        check_not_input(p, protect)
    temps: dict[Path, str] = {}
    placed: list[tuple[Path, str | None]] = []  # (path, backup of what it replaced)
    try:
        for p, data in files.items():
            temps[p] = _write_temp(p, data)
        for p, tmp in temps.items():
            placed.append((p, _place(p, tmp, overwrite)))
    except BaseException:
        for p, backup in reversed(placed):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, p)
                else:
                    p.unlink()
        raise
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
    for _, backup in placed:
        if backup is not None:
            Path(backup).unlink(missing_ok=True)


def _write_temp(p: Path, data: bytes) -> str:
    parent = p.parent if str(p.parent) else Path(".")
    try:
        # A short temporary name: a legal 255-byte file name must still have room for it.
        fd, tmp = tempfile.mkstemp(prefix=".artstyle-", suffix=".part", dir=parent)
    except OSError as e:
        raise storage_error(p, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise storage_error(p, e) from None
        raise
    return tmp


def _place(p: Path, tmp: str, overwrite: bool) -> str | None:
    """Put ``tmp`` at ``p``; returns a hard-linked backup of the file it replaced (None if none)."""
    try:
        if not overwrite:
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise OutputExistsError(p) from None
            except OSError as e:  # a file system without hard links: the check is then not atomic
                if p.exists() or p.is_symlink():
                    raise OutputExistsError(p) from None
                if isinstance(e, (IsADirectoryError, PermissionError, NotADirectoryError)):
                    raise
                os.replace(tmp, p)
            return None
        backup = None
        if p.is_file() and not p.is_symlink():
            backup = tmp + ".old"
            try:
                os.link(p, backup)
            except OSError:
                backup = None  # (no hard links here: a failed second file cannot restore this one)
        os.replace(tmp, p)
        return backup
    except OSError as e:
        raise storage_error(p, e) from None


def probe_writable(folder: Path, where: object) -> None:
    """Write and remove a file in ``folder``, the only honest test that it can be written; an
    ArtstyleError naming ``where`` (the output that needs it) when it cannot."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".artstyle-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ArtstyleError(f"{where}: folder {folder} is not writable ({e.strerror or e})") from None
