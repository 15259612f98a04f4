"""The run record: what a run read (its inputs, with their sha256), what it made (the image and
the JSON sidecar beside it: config, seed, versions, losses, timings), and the checks that keep a
run from replacing anything of the user's.

Every output can be reproduced from its sidecar; JSON is written strictly (no NaN) and atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL
import torch
from PIL import Image

from artstyle._version import __version__
from artstyle.config import StyleConfig
from artstyle.errors import ArtstyleError
from artstyle.files import (
    OutputExistsError,
    atomic_write_bytes,
    atomic_write_files,
    check_name,
    check_not_input,
    check_regular_file,
)
from artstyle.images.decode import check_size, decode_image
from artstyle.images.encode import Encoding, check_writable, encode_image, encode_pixels16

if TYPE_CHECKING:  # (the record is handed a run's result; it never calls the engine)
    from artstyle.engine.stylizer import StyleResult


@dataclass
class Source:
    """An input image and where it came from (a path, or a built-in's name)."""

    image: Image.Image
    name: str
    sha256: str = ""
    path: Path | None = None  # the file it was read from (protected from being overwritten)

    @classmethod
    def from_path(cls, path: str | Path, need: int | None = None) -> Source:
        """The file read once: its bytes are hashed and decoded (as :func:`images.load_image`;
        ``need``: the longest side the run uses it at, so a huge file decodes smaller)."""
        p = check_regular_file(path, "image")
        try:
            data = p.read_bytes()
        except PermissionError:
            raise ArtstyleError(f"{p}: permission denied") from None
        except OSError as e:
            raise ArtstyleError(f"{p}: cannot read ({e.strerror or e})") from None
        return cls.from_bytes(data, str(path), hashlib.sha256(data).hexdigest(), Path(path), need)

    @classmethod
    def from_bytes(
        cls, data: bytes, name: str, sha256: str, path: Path | None = None, need: int | None = None
    ) -> Source:
        """An input's bytes decoded as the file ``name`` is (errors name it)."""
        im = decode_image(data, name, need)
        check_size(im, name)
        return cls(im, name, sha256, path)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "sha256": self.sha256,
            "width": self.image.width,
            "height": self.image.height,
        }


def finished_run(out: Path, config: dict[str, Any], shas: Sequence[str]) -> dict[str, Any] | None:
    """The sidecar of ``out`` when it is a finished run (not interrupted, no error) with this
    config and these inputs (``shas``: the photo's, then each painting's); else None. What makes a
    re-run skip a picture it has already made."""
    side = sidecar_path(out)
    if not (out.is_file() and side.is_file()):
        return None
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("interrupted") or data.get("error"):
        return None
    if data.get("config") != config:
        return None
    content, styles = data.get("content"), data.get("styles")
    if not isinstance(content, dict) or not isinstance(styles, list):
        return None
    got = [content.get("sha256")] + [s.get("sha256") if isinstance(s, dict) else None for s in styles]
    return data if got == list(shas) else None


def input_paths(content: Source, styles: Sequence[Source]) -> list[Path]:
    """The files a run read (an output must never replace one of them)."""
    return [s.path for s in (content, *styles) if s.path is not None]


def sidecar_path(out: Path) -> Path:
    """``out.png`` -> ``out.png.json``."""
    return out.with_name(out.name + ".json")


def checkpoint_path(out: Path, iteration: int) -> Path:
    return out.with_name(f"{out.stem}.iter{iteration:05d}{out.suffix}")


def versions() -> dict[str, str]:
    return {
        "artstyle": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def sidecar_data(
    name: str,
    result: StyleResult | None,
    cfg: StyleConfig,
    content: Source,
    styles: Sequence[Source],
    extra: dict[str, Any] | None = None,
    *,
    error: str = "",
    history: list[dict[str, Any]] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The sidecar of output ``name`` as a dict (JSON-ready once NaNs are named): everything needed
    to reproduce and judge it: config, inputs, versions, losses, timings, the ``command`` (default:
    this process's argv); ``extra`` as is."""
    data: dict[str, Any] = {
        "output": name,
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "content": content.describe(),
        "styles": [s.describe() for s in styles],
        "versions": versions(),
        "command": sys.argv if command is None else command,
        **(extra or {}),
    }
    if result is not None:
        data.update(
            weights=result.weights_id,
            device=result.device,
            timings=result.timings,
            peak_memory_mb=round(result.peak_memory_mb, 1),
            interrupted=result.interrupted,
            iterations=len(result.history),
            history=result.history,
        )
    else:
        data.update(history=history or [])
    if error:
        data["error"] = error
    return data


def json_safe(v: Any, nonfinite: Callable[[float], Any] = str) -> Any:
    """``v`` with every NaN or infinite float replaced by ``nonfinite(x)`` (its name as a string by
    default; the studio's events use None): JSON has no NaN."""
    if isinstance(v, float) and not math.isfinite(v):
        return nonfinite(v)
    if isinstance(v, dict):
        return {k: json_safe(x, nonfinite) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x, nonfinite) for x in v]
    return v


def write_json(path: Path, data: Any, *, overwrite: bool, protect: Sequence[Path] = ()) -> Path:
    """``data`` as strict JSON (see :func:`json_safe`), written atomically."""
    atomic_write_bytes(path, json_bytes(data), overwrite=overwrite, protect=protect)
    return path


def json_bytes(data: Any) -> bytes:
    """``data`` as the strict, indented JSON every record is written in."""
    return (json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n").encode()


def check_output(
    out: str | Path,
    overwrite: bool,
    inputs: Sequence[str | Path] = (),
    also: Sequence[Path] = (),
) -> Path:
    """The output and its sidecar (and ``also``: checkpoints, demo inputs) can be written, none is
    one of ``inputs``, and nothing the user has is replaced unasked."""
    check_name(Path(out))
    p = check_writable(out, overwrite, inputs)  # (the folder's writability is probed once, here)
    for q in (*also, sidecar_path(p)):
        check_name(q, beside="")
        check_not_input(q, inputs)
        if q.is_dir() and not q.is_symlink():
            raise ArtstyleError(f"{q}: is a folder; the run would write a file there")
        if (q.exists() or q.is_symlink()) and not overwrite:
            raise OutputExistsError(q)
    return p


def write_result(
    out: Path,
    image: Image.Image,
    result: StyleResult | None,
    cfg: StyleConfig,
    content: Source,
    styles: Sequence[Source],
    *,
    overwrite: bool,
    extra: dict[str, Any] | None = None,
    error: str = "",
    history: list[dict[str, Any]] | None = None,
    encoding: Encoding | None = None,
    pixels: np.ndarray | None = None,
    command: list[str] | None = None,
) -> Path:
    """Write the image and its sidecar, both or neither (:func:`atomic_write_files`), under ``out``
    or, when ``out`` or its sidecar appeared meanwhile (and ``overwrite`` is off), under the next
    free name: nothing of the user's is replaced. Returns where the image went; an ArtstyleError
    says that nothing was written and why. ``encoding``: JPEG/WebP quality, 8 or 16 bits;
    ``pixels``: the finished picture unrounded ((H, W, 3) floats in 0-255) for a 16-bit output
    (default: ``image``'s)."""
    inputs = input_paths(content, styles)
    encoding = encoding or Encoding()
    if encoding.bits == 16:
        deep = np.asarray(image.convert("RGB"), np.float64) if pixels is None else pixels
        alpha = np.asarray(image.getchannel("A")) if image.mode == "RGBA" else None
        picture = encode_pixels16(deep, out, exif=content.image.info.get("exif", b""), alpha=alpha)
    else:
        picture = encode_image(image, out, exif=content.image.info.get("exif", b""), quality=encoding.quality)
    extra = {**(extra or {}), "encoding": asdict(encoding)}
    target = out
    for k in range(1, 10_000):
        data = sidecar_data(
            target.name, result, cfg, content, styles, extra, error=error, history=history, command=command
        )
        files = {target: picture, sidecar_path(target): json_bytes(data)}
        try:
            atomic_write_files(files, overwrite=overwrite, protect=inputs)
            return target
        except OutputExistsError:
            target = out.with_name(f"{out.stem}-{k}{out.suffix}")
        except ArtstyleError as e:
            raise ArtstyleError(f"{e}; neither {target.name} nor its sidecar was written") from None
    raise ArtstyleError(f"{out}: no free name beside it; nothing was written")
