"""The resumable state of a long run, kept beside its output (``OUT.png.state/``) while it runs,
so that the same command continues after a kill, a power cut or Ctrl-C.

What is kept is what the stylizer hands over (:class:`artstyle.engine.stylizer.RunState`): the picture at
the start of the current level or pass, the tiles of the pass already made, the optimiser's carry,
the step count, and the history so far. A state is taken up only by the same run: the same
settings, inputs and plan (its ``key``); anything else is refused in one line. The folder goes
when the output is written; its files are written atomically and a file goes only once the record no longer
names it, so a kill at any moment leaves the last good state.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artstyle.engine.stylizer import RunState
from artstyle.errors import ArtstyleError, setting
from artstyle.files import atomic_write_bytes, probe_writable, sha256_file
from artstyle.runs.record import json_safe

STATE = "state.json"
LOCK = "lock"


def state_dir(out: Path) -> Path:
    """``out.png`` -> ``out.png.state``."""
    return out.with_name(out.name + ".state")


def _npy(t: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    np.save(buf, t.detach().float().cpu().numpy(), allow_pickle=False)
    return buf.getvalue()


def _tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(path, allow_pickle=False))


def state_bytes(state: RunState) -> bytes:
    """``state`` as bytes, for a run that keeps it elsewhere (a studio job's folder): read back by
    :func:`state_from_bytes`."""
    buf = io.BytesIO()
    data = {
        "level": state.level,
        "iteration": state.iteration,
        "carried": state.carried,
        "pass_index": state.pass_index,
        "image": state.image.detach().float().cpu(),
        "tiles_done": [t.detach().float().cpu() for t in state.tiles_done],
    }
    torch.save(data, buf)
    return buf.getvalue()


def state_from_bytes(data: bytes) -> RunState:
    """A state written by :func:`state_bytes` (tensors and numbers only: nothing is unpickled);
    ArtstyleError when it is not one."""
    try:
        d = torch.load(io.BytesIO(data), weights_only=True)
        return RunState(
            level=int(d["level"]),
            image=d["image"],
            iteration=int(d["iteration"]),
            carried=None if d["carried"] is None else float(d["carried"]),
            pass_index=int(d["pass_index"]),
            tiles_done=list(d["tiles_done"]),
        )
    except Exception as e:  # (whatever a damaged file makes torch.load or the fields raise)
        raise ArtstyleError(f"the kept state cannot be read ({type(e).__name__})") from None


class RunStore:
    """The state folder of output ``out`` for the run described by ``key`` (JSON-ready)."""

    def __init__(self, out: Path, key: dict[str, Any]) -> None:
        self.dir = state_dir(out)
        self.out = out
        self.key = json.loads(json.dumps(json_safe(key), sort_keys=True))
        self.history: list[dict[str, Any]] = []
        self._image_for: tuple[int, int] | None = None  # (level, pass) of the image on disk
        self._tiles = 0
        self.interim = ""  # sha256 of the picture a stopped run left at the output
        self._lock: int | None = None
        self._made = False

    def lock(self, restart: bool = False) -> None:
        """Take the state folder for this run, before anything is read from it: made if needed
        and tried for writing (a folder that cannot be written is one line now, not after the
        first tile), and locked, so that a second run of the same output is refused in one line
        while this one lives (the lock goes with the process, a kill included). ``restart``: an
        earlier run's state is removed first."""
        made = not self.dir.exists()
        try:
            if restart and not made:
                for p in [*self.dir.glob("*.npy"), self.dir / STATE]:
                    p.unlink(missing_ok=True)
            self.dir.mkdir(exist_ok=True)
        except OSError as e:
            raise ArtstyleError(f"{self.dir}: cannot make the state folder ({e.strerror or e})") from None
        self._made = made
        try:
            probe_writable(self.dir, self.out)
            self._take()
        except BaseException:
            self.release()  # (and the folder, if this run made it)
            raise

    def _take(self) -> None:
        try:
            import fcntl
        except ImportError:  # (no advisory locks here: the run goes on unlocked)
            return
        try:
            fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise ArtstyleError(f"{self.out}: cannot lock its state {self.dir} ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ArtstyleError(
                f"{self.out}: another run is painting it now (its state {self.dir} is in use); wait for "
                "it to finish, or choose another output"
            ) from None
        self._lock = fd

    def release(self) -> None:
        """Let go of the lock (and of a state folder this run made and left empty)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if self._made and self.dir.is_dir() and not (self.dir / STATE).exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def load(self) -> RunState | None:
        """The state a stopped run of the same key left, or None; a folder of another run (or
        unreadable) is one ArtstyleError."""
        if not (self.dir / STATE).exists():
            return None
        try:
            data = json.loads((self.dir / STATE).read_text())
            if not isinstance(data, dict) or data.get("key") != self.key:
                raise ArtstyleError(
                    f"{self.dir}: holds the state of another run (other settings or inputs); remove it "
                    f"or pass {setting('restart')} to start over"
                )
            s = data["state"]
            image = _tensor(self.dir / s["image"])
            tiles = [_tensor(self.dir / name) for name in s["tiles"]]
            self.history = list(data.get("history", []))
            self.interim = str(data.get("interim_sha256", ""))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ArtstyleError(
                f"{self.dir}: the saved state cannot be read ({type(e).__name__}); remove it or pass "
                f"{setting('restart')} to start over"
            ) from None
        self._image_for, self._tiles = (s["level"], s["pass"]), len(tiles)
        carried = s.get("carried")
        return RunState(
            s["level"], image[None] if image.ndim == 3 else image, s["iteration"], carried, s["pass"], tiles
        )

    def owns_output(self) -> bool:
        """Whether the file at the output is the picture this run wrote when it was stopped (so
        that continuing may replace it)."""
        try:
            return bool(self.interim) and self.out.is_file() and self.interim == sha256_file(self.out)
        except OSError:
            return False

    def save(self, state: RunState) -> None:
        """Keep ``state`` (and the history so far): the picture when its level or pass is new,
        the newest tile, then the record that names them."""
        self.dir.mkdir(exist_ok=True)
        where = (state.level, state.pass_index)
        image = f"image-{state.level}-{state.pass_index}.npy"
        if where != self._image_for:
            atomic_write_bytes(self.dir / image, _npy(state.image), overwrite=True)
            self._image_for, self._tiles = where, 0
        names = [f"tile-{state.level}-{state.pass_index}-{k:04d}.npy" for k in range(len(state.tiles_done))]
        for k in range(self._tiles, len(state.tiles_done)):
            atomic_write_bytes(self.dir / names[k], _npy(state.tiles_done[k]), overwrite=True)
        self._tiles = len(state.tiles_done)
        record = {
            "level": state.level,
            "pass": state.pass_index,
            "iteration": state.iteration,
            "carried": state.carried,
            "image": image,
            "tiles": names,
        }
        self._write({"key": self.key, "state": record, "history": self.history})
        # only now that the record names the new files may the old ones go (a kill at any point
        # leaves a record whose files are all there)
        keep = {image, *names}
        for old in [*self.dir.glob("image-*.npy"), *self.dir.glob("tile-*.npy")]:
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def mark_interim(self) -> None:
        """The output now holds the picture so far (Ctrl-C): remember it as this run's."""
        try:
            data = json.loads((self.dir / STATE).read_text())
            self.interim = sha256_file(self.out)
        except (OSError, ValueError):
            return
        self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        if self.interim:
            data["interim_sha256"] = self.interim
        text = json.dumps(json_safe(data), allow_nan=False)
        atomic_write_bytes(self.dir / STATE, text.encode(), overwrite=True)

    def clear(self) -> None:
        """The run is done: the state goes (and its lock)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self._made = False
        self.release()


def run_key(
    config: dict[str, Any], inputs: list[dict[str, Any]], plan: list[dict[str, Any]]
) -> dict[str, Any]:
    """What makes two runs the same: settings, inputs (by sha256) and plan."""
    digest = hashlib.sha256(json.dumps([config, inputs], sort_keys=True).encode()).hexdigest()
    return {"config": config, "inputs": inputs, "plan": plan, "digest": digest}
