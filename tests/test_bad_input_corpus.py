"""A corpus of bad and odd inputs, generated here (no binaries committed), each run through the real
command line: exactly one ``artstyle: error:`` line, no traceback, the expected exit code, and every
file the user had before the run unchanged (bytes and permissions), with no temporary file left.

The classes: bad image files (as photo and as painting), bad numbers and flags, outputs that would
destroy an input or an existing file, bad config files, bad weights files, and runs too big for
the memory. Each case fails before any optimisation, so the whole corpus takes seconds.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from artstyle.apps.cli import main
from tests.conftest import gradient_image, random_state, stripes_image
from tests.test_images import _png_header_only

FAST = ["--size", "40", "--scales", "1", "--iterations", "1", "-q"]


@dataclass
class Case:
    id: str
    args: Callable[[Path], list[str]]  # given the workspace
    pattern: str  # must appear in the one error line
    code: int = 1


def _jpeg(w: int = 64, h: int = 64) -> bytes:
    buf = io.BytesIO()
    gradient_image(w, h).save(buf, "JPEG")
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


#: Bad image files: name -> (bytes, or a callable making the path, or None for "missing"), message.
BAD_FILES: dict[str, tuple[object, str]] = {
    "missing": (None, "no such file"),
    "empty": (b"", "not an image"),
    "text": (b"hello, I am not a picture\n", "not an image"),
    "html_named_png": (b"<html><body>hi</body></html>", "not an image"),
    "random_bytes": (bytes(range(256)) * 7, "not an image"),
    "truncated_jpeg": (_jpeg()[:300], "truncated|cannot decode"),
    "truncated_png": (_png(gradient_image(64, 64))[:120], "truncated|cannot decode|not an image"),
    "header_only_png": (_png_header_only(64, 64), "truncated|cannot decode|not an image"),
    "bomb_png": (_png_header_only(30000, 30000), "too large"),
    "tiny_png": (_png(gradient_image(20, 50)), "at least 32 px"),
    "one_pixel_gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "at least 32 px|cannot decode|not an image"),
    "folder": ("folder", "folder"),
    "fifo": ("fifo", "not a regular file"),
    "dangling_link": ("dangling", "no such file"),
    "link_loop": ("loop", "no such file|cannot read|Too many"),
    "dev_null": ("devnull", "not a regular file"),
}


def _make_bad(ws: Path, name: str) -> Path:
    data, _ = BAD_FILES[name]
    p = ws / "bad" / f"{name}.png"
    if data is None:
        return p
    if data == "folder":
        p.mkdir()
    elif data == "fifo":
        os.mkfifo(p)
    elif data == "dangling":
        p.symlink_to(ws / "bad" / "gone.png")
    elif data == "loop":
        p.symlink_to(p)
    elif data == "devnull":
        return Path("/dev/null")
    else:
        assert isinstance(data, bytes)
        p.write_bytes(data)
    return p


def _stylize(ws: Path, *extra: object, out: str = "out.png") -> list[str]:
    return ["stylize", str(ws / "photo.png"), str(ws / "painting.png"), "-o", str(ws / out), *FAST] + [
        str(e) for e in extra
    ]


CASES: list[Case] = []

# -- bad image files, as the photo and as the painting --------------------------------------------
for _name, (_, _msg) in BAD_FILES.items():
    CASES.append(
        Case(
            f"photo-{_name}",
            lambda ws, n=_name: [
                "stylize",
                str(_make_bad(ws, n)),
                str(ws / "painting.png"),
                "-o",
                str(ws / "out.png"),
                *FAST,
            ],
            _msg,
        )
    )
    CASES.append(
        Case(
            f"painting-{_name}",
            lambda ws, n=_name: [
                "stylize",
                str(ws / "photo.png"),
                str(_make_bad(ws, n)),
                "-o",
                str(ws / "o.png"),
                *FAST,
            ],
            _msg,
        )
    )

# -- extreme shapes that the network cannot read at the asked size ---------------------------------
for _w, _h, _size in ((10000, 40, 512), (200, 40, 64), (40, 3000, 512), (3000, 33, 40)):
    CASES.append(
        Case(
            f"shape-{_w}x{_h}-size{_size}",
            lambda ws, w=_w, h=_h, s=_size: [
                "stylize",
                str(_save(ws / f"thin{w}x{h}.png", gradient_image(w, h))),
                str(ws / "painting.png"),
                "-o",
                str(ws / "o.png"),
                "-q",
                "--size",
                str(s),
                "--scales",
                "1",
                "--iterations",
                "1",
            ],
            "short side would be",
        )
    )

# -- bad numbers: NaN, infinities, out of range -----------------------------------------------------
_NUMBERS = [
    ("--content-weight", "nan", "finite"),
    ("--style-weight", "nan", "finite"),
    ("--style-weight", "inf", "finite"),
    ("--tv-weight", "-inf", "finite"),
    ("--tv-weight", "-1", "must not be negative"),
    ("--learning-rate", "nan", "finite"),
    ("--time-limit", "nan", "finite"),
    ("--time-limit", "inf", "finite"),
    ("--epsilon", "nan", "finite"),
    ("--beta1", "1", r"beta1 must be in \[0, 1\)"),
    ("--beta2", "1.5", r"beta2 must be in \[0, 1\)"),
    ("--beta1", "-0.1", r"beta1 must be in \[0, 1\)"),
    ("--seed", str(2**64), r"seed must be in \[0, 9223372036854775807\]"),
    ("--seed", "-1", "seed must be in"),
    ("--scales", "1100", r"scales must be in \[1, 12\]"),
    ("--scales", "0", r"scales must be in \[1, 12\]"),
    ("--size", "10", r"size must be in \[32, 16384\]"),
    ("--size", "100000", r"size must be in \[32, 16384\]"),
    ("--iterations", "-1", "iterations must be in"),
    ("--iterations", "99999999999", "iterations must be in"),
    ("--style-scale", "0", r"style_scale must be in \(0, 16\]"),
    ("--style-scale", "nan", "finite"),
    ("--style-scale", "200", r"style_scale must be in \(0, 16\]"),
    ("--scale-ratio", "1", r"scale_ratio must be in \(1, 16\]"),
    ("--content-weight-blend", "2", r"content_weight_blend must be in \[0, 1\]"),
    ("--initial-noiseblend", "nan", "finite"),
    ("--ema-decay", "1", r"\[0, 1\)"),
    ("--style-layer-weight-exp", "0", "must be positive"),
    ("--style-blend-weights", "nan", "finite"),
    ("--style-blend-weights", "1,2", "style_blend_weights"),
    ("--level-iterations", "5,5,5", "level_iterations has 3"),
    ("--content-layers", "relu9_9", "relu9_9"),
    ("--style-layers", ",", "must not be empty"),
    ("--coarse-min-size", "4", "coarse_min_size must be at least 32"),
    ("--paint-size", "1", r"paint_size must be 0 \(no detail levels\) or at least 32"),
    ("--paint-size", "16", r"paint_size must be 0 \(no detail levels\) or at least 32"),
]
for _flag, _value, _msg in _NUMBERS:
    CASES.append(Case(f"number{_flag}={_value}", lambda ws, f=_flag, v=_value: _stylize(ws, f, v), _msg))
CASES.append(
    Case("adam-lr-nan", lambda ws: _stylize(ws, "--optimizer", "adam", "--learning-rate", "nan"), "finite")
)
CASES.append(
    Case("adam-lr-zero", lambda ws: _stylize(ws, "--optimizer", "adam", "--learning-rate", "0"), "positive")
)
CASES.append(
    Case("adam-eps-zero", lambda ws: _stylize(ws, "--optimizer", "adam", "--epsilon", "0"), "positive")
)

# -- wrong command lines (click's usage errors: exit 2, still one line) ----------------------------
_USAGE = [
    ("size-not-number", lambda ws: _stylize(ws, "--size", "abc"), "size", 2),
    ("unknown-flag", lambda ws: _stylize(ws, "--colour", "red"), "colour", 2),
    ("bad-choice", lambda ws: _stylize(ws, "--optimizer", "sgd"), "sgd", 2),
    ("unknown-preset", lambda ws: _stylize(ws, "--preset", "nope"), "nope", 2),
    ("missing-output", lambda ws: ["stylize", str(ws / "photo.png"), str(ws / "painting.png")], "output", 2),
    (
        "missing-style",
        lambda ws: ["stylize", str(ws / "photo.png"), "-o", str(ws / "o.png")],
        "at least one painting",
        2,
    ),
    ("unknown-command", lambda ws: ["paint"], "paint", 2),
    ("checkpoint-negative", lambda ws: _stylize(ws, "--checkpoint-every", "-1"), "checkpoint", 2),
    ("seed-float", lambda ws: _stylize(ws, "--seed", "1.5"), "seed", 2),
]
CASES += [Case(i, a, m, c) for i, a, m, c in _USAGE]


# -- outputs that would destroy something ---------------------------------------------------------
def _link(ws: Path, name: str, target: str, hard: bool = False) -> Path:
    p = ws / name
    if hard:
        os.link(ws / target, p)
    else:
        p.symlink_to(ws / target)
    return p


_OUTPUTS = [
    ("out-is-photo", lambda ws: _stylize(ws, out="photo.png"), "is one of the inputs|already exists"),
    (
        "out-is-photo-overwrite",
        lambda ws: _stylize(ws, "--overwrite", out="photo.png"),
        "is one of the inputs",
    ),
    (
        "out-is-painting-overwrite",
        lambda ws: _stylize(ws, "--overwrite", out="painting.png"),
        "one of the inputs",
    ),
    (
        "out-symlink-to-photo-overwrite",
        lambda ws: _stylize(ws, "--overwrite", out=_link(ws, "alias.png", "photo.png").name),
        "is one of the inputs",
    ),
    (
        "out-hardlink-to-photo-overwrite",
        lambda ws: _stylize(ws, "--overwrite", out=_link(ws, "hard.png", "photo.png", hard=True).name),
        "is one of the inputs",
    ),
    (
        "out-dotdot-photo-overwrite",
        lambda ws: _stylize(ws, "--overwrite", out="bad/../photo.png"),
        "is one of the inputs",
    ),
    ("out-exists", lambda ws: _stylize(ws, out="mine.png"), "already exists"),
    ("out-sidecar-exists", lambda ws: _stylize(ws, out="free.png"), "already exists"),
    ("out-is-folder", lambda ws: _stylize(ws, out="bad"), "unknown output format|is a folder"),
    ("out-is-folder-png", lambda ws: _stylize(ws, out="dir.png"), "is a folder"),
    ("out-missing-folder", lambda ws: _stylize(ws, out="nowhere/o.png"), "does not exist"),
    ("out-unknown-suffix", lambda ws: _stylize(ws, out="o.xyz"), "unknown output format"),
    ("out-no-suffix", lambda ws: _stylize(ws, out="o"), "unknown output format"),
    ("out-name-too-long", lambda ws: _stylize(ws, out="n" * 248 + ".png"), "file name too long"),
    (
        "out-sidecar-is-folder",
        lambda ws: _stylize(ws, "--overwrite", out="side.png"),
        "side.png.json: is a folder",
    ),
    ("out-fifo-overwrite", lambda ws: _stylize(ws, "--overwrite", out="pipe.png"), "not a regular file"),
    (
        "checkpoint-exists",
        lambda ws: _stylize(ws, "--iterations", "4", "--checkpoint-every", "2", out="ck.png"),
        "ck.iter00002.png: already exists",
    ),
    (
        "demo-inputs-exist",
        lambda ws: ["demo", "-o", str(ws / "demo.png"), *FAST],
        "demo.content.png: already exists",
    ),
]
CASES += [Case(i, a, m) for i, a, m in _OUTPUTS]

# -- config files ---------------------------------------------------------------------------------
_CONFIGS: list[tuple[str, object, str]] = [
    ("binary-junk", bytes(range(256)) * 3, "not a text file|not valid TOML"),
    ("bad-toml", b"style_weight = = 3\n", "not valid TOML"),
    ("unknown-key", b"style_weigth = 3\n", "style_weigth"),
    ("wrong-type", b'style_weight = "lots"\n', "style_weight"),
    ("nan-value", b"style_weight = nan\n", "finite"),
    ("inf-value", b"tv_weight = inf\n", "finite"),
    ("list-for-number", b"size = [1, 2]\n", "size"),
    ("bool-for-number", b"size = true\n", "size"),
    ("fifo", "fifo", "not a regular file"),
    ("missing", None, "no such file"),
    ("folder", "folder", "folder"),
]


def _config(ws: Path, name: str, data: object) -> Path:
    p = ws / "cfg" / f"{name}.toml"
    if data == "fifo":
        os.mkfifo(p)
    elif data == "folder":
        p.mkdir()
    elif isinstance(data, bytes):
        p.write_bytes(data)
    return p


for _name, _data, _msg in _CONFIGS:
    CASES.append(
        Case(
            f"config-{_name}",
            lambda ws, n=_name, d=_data: _stylize(ws, "--config", _config(ws, n, d)),
            _msg,
            2 if _name == "folder" else 1,  # (click's own path check: a usage error)
        )
    )


# -- weights files --------------------------------------------------------------------------------
def _weights(ws: Path, kind: str) -> Path:
    p = ws / "w" / f"{kind}.pth"
    if kind == "nan":
        state = random_state("vgg19")
        state["conv3_1.weight"][0, 0, 0, 0] = float("nan")
        torch.save(state, p)
    elif kind == "nan-bias":
        state = random_state("vgg19")
        state["conv1_1.bias"][0] = float("inf")
        torch.save(state, p)
    elif kind == "junk":
        p.write_bytes(b"\x00junk" * 100)
    elif kind == "vgg16-for-vgg19":
        torch.save(random_state("vgg16"), p)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "list":
        torch.save([1, 2, 3], p)
    return p


_WEIGHTS = [
    ("nan", "NaN or infinite"),
    ("nan-bias", "NaN or infinite"),
    ("junk", "not a readable PyTorch weights file"),
    ("vgg16-for-vgg19", "no weights for|shape"),
    ("fifo", "not a regular file"),
    ("list", "not a state dict"),
    ("missing", "no such weights file|no such file"),
]
for _kind, _msg in _WEIGHTS:
    CASES.append(
        Case(f"weights-{_kind}", lambda ws, k=_kind: _stylize(ws, "--weights", _weights(ws, k)), _msg)
    )


# -- the Ray runner ---------------------------------------------------------------------------------
def _grid(ws: Path, *extra: str) -> list[str]:
    images = ["--content", str(ws / "photo.png"), "--style", str(ws / "painting.png")]
    return ["grid", *images, "-o", str(ws / "g"), *FAST, *extra]


CASES += [
    Case(
        "ray-unreachable",
        lambda ws: _grid(ws, "--runner", "ray", "--ray-address", "127.0.0.1:1"),
        "cannot reach",
    ),
    Case("ray-bad-runner", lambda ws: _grid(ws, "--runner", "spark"), "spark", 2),
    Case("ray-cpus-zero", lambda ws: _grid(ws, "--runner", "ray", "--ray-cpus-per-run", "0"), "cpus", 2),
]

# -- too big for the memory: refused before any work ------------------------------------------------
CASES.append(Case("memory-size-16384", lambda ws: _stylize(ws, "--size", "16384"), "needs about .* GB"))
CASES.append(
    Case(
        "memory-style-scale",
        lambda ws: _stylize(ws, "--size", "4096", "--style-scale", "16"),
        "needs about .* GB",
    )
)


def _save(p: Path, im: Image.Image) -> Path:
    im.save(p)
    return p


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every regular file under ``root``: sha256 and permission bits (links and FIFOs by target)."""
    snap = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file():
            snap[str(p.relative_to(root))] = ("link" if p.is_symlink() else "special", 0)
            continue
        snap[str(p.relative_to(root))] = (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mode & 0o7777,
        )
    return snap


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for d in ("bad", "cfg", "w", "dir.png", "side.png.json"):
        (ws / d).mkdir(parents=True)
    gradient_image().save(ws / "photo.png")
    stripes_image().save(ws / "painting.png")
    (ws / "mine.png").write_bytes(b"the user's own picture")
    (ws / "free.png.json").write_text('{"the user": "notes"}')
    (ws / "ck.iter00002.png").write_bytes(b"an older checkpoint the user keeps")
    (ws / "demo.content.png").write_bytes(b"the user's file that happens to have this name")
    os.mkfifo(ws / "pipe.png")
    return ws


def test_the_corpus_covers_every_kind_of_bad_input_for_every_file_a_run_reads():
    """Each file a run reads (photo, painting, config, weights) is tried missing, empty or junk,
    truncated or odd (a folder, a FIFO), and every number flag out of range; each case names a
    pattern its one error line must hold, so no case can pass on an empty message."""
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES)  # (a duplicated id would hide a case)
    for kind in ("photo", "painting"):
        for bad in ("missing", "empty", "random_bytes", "truncated_jpeg", "truncated_png", "bomb_png"):
            assert f"{kind}-{bad}" in ids, (kind, bad)
        for odd in ("folder", "fifo", "dangling_link", "link_loop", "dev_null", "tiny_png"):
            assert f"{kind}-{odd}" in ids, (kind, odd)
    for kind in ("config", "weights"):
        for bad in ("missing", "fifo"):
            assert f"{kind}-{bad}" in ids, (kind, bad)
    for guarded in (
        "out-is-photo-overwrite",
        "out-symlink-to-photo-overwrite",
        "out-hardlink-to-photo-overwrite",
    ):
        assert guarded in ids  # (an input is never an output, even with --overwrite)
    numbers = {c.id.split("=")[0] for c in CASES if c.id.startswith("number")}
    assert {"number--size", "number--iterations", "number--style-scale"} <= numbers, numbers
    assert all(c.pattern.strip() and c.code in (1, 2) for c in CASES)


@pytest.mark.usefixtures("tiny_weights")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(workspace)
    args = case.args(workspace)  # may create the bad file itself
    before = _snapshot(workspace)
    result = CliRunner().invoke(main, args)
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("artstyle: error:")]
    assert len(errors) == 1, output
    assert ("Traceback" not in output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    assert result.exit_code == case.code, output
    assert re.search(case.pattern, errors[0]), errors[0]
    after = _snapshot(workspace)
    assert {k: v for k, v in after.items() if k in before} == before, "a file the user had changed"
    assert not [k for k in after if ".artstyle-" in k or k.endswith(".part")], after
