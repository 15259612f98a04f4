"""An error names the settings it asks to change; each interface words them."""

from __future__ import annotations

import pytest

from artstyle import StyleConfig, Stylizer
from artstyle.apps.web.settings import label
from artstyle.errors import ArtstyleError, flag, setting
from tests.conftest import gradient_image, stripes_image


def test_an_error_carries_its_settings_and_each_interface_words_them():
    e = ArtstyleError(f"lower {setting('size')} or raise {setting('max_memory')}")
    assert e.settings == ["size", "max_memory"]
    assert str(e) == "lower size or raise max_memory"  # Python's keywords
    assert e.worded(flag) == "lower --size or raise --max-memory"  # the command line's flags
    assert e.worded(label) == "lower the Size or raise max_memory (under Advanced)"  # the page's labels
    wrapped = ArtstyleError(f"{e}; nothing was written")  # (a message built on another keeps the names)
    assert wrapped.worded(flag) == "lower --size or raise --max-memory; nothing was written"


def test_the_engine_names_the_setting_not_a_flag():
    cfg = StyleConfig(size=64, tile_size=256, scales=1, iterations=1)
    with pytest.raises(ArtstyleError) as info:
        Stylizer([stripes_image()], cfg).plan(gradient_image(64, 48))
    assert info.value.settings == ["tile_size", "tile_size"] and "--" not in str(info.value)
    assert info.value.worded(flag).startswith("--tile-size 256 is over the picture")
