import pytest

from artstyle.config import PRESETS, StyleConfig, coerce, from_dict, literal_choices, preset
from artstyle.errors import ArtstyleError


def test_defaults_are_valid_and_roundtrip():
    cfg = StyleConfig()
    assert cfg.problems() == []
    assert from_dict(cfg.to_dict()) == cfg


def test_study_presets_hold_the_study_values():
    adam = preset("study-vgg19-adam")
    assert (adam.network, adam.optimizer, adam.pooling) == ("vgg19", "adam", "max")
    assert (adam.content_weight, adam.content_weight_blend, adam.style_weight, adam.tv_weight) == (
        5.0,
        1.0,
        500.0,
        100.0,
    )
    assert (adam.learning_rate, adam.beta1, adam.beta2, adam.epsilon) == (10.0, 0.9, 0.999, 1e-8)
    assert (adam.style_layer_weight_exp, adam.style_scale, adam.iterations) == (1.0, 1.0, 100)
    lbfgs = preset("study-vgg16-lbfgs")
    assert (lbfgs.network, lbfgs.optimizer) == ("vgg16", "lbfgs")
    assert (lbfgs.content_weight, lbfgs.style_weight, lbfgs.tv_weight) == (0.05, 5.0, 1.0)
    for name in PRESETS:
        assert preset(name).problems() == []


def test_unknown_key_is_named_with_a_hint():
    with pytest.raises(ArtstyleError, match=r"unknown setting 'style_wieght'.*style_weight"):
        from_dict({"style_wieght": 3})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("style_weight", 5, 5.0),
        ("iterations", 10.0, 10),
        ("size", "64", 64),
        ("style_layers", "relu1_1, relu2_1", ("relu1_1", "relu2_1")),
        ("style_blend_weights", [1, 2], (1.0, 2.0)),
        ("pooling", "avg", "avg"),
    ],
)
def test_coerce(name, value, expected):
    assert coerce(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [("iterations", 1.5), ("style_weight", "heavy"), ("style_layers", 3), ("pooling", 1), ("size", True)],
)
def test_wrong_types_are_rejected_naming_the_field(name, value):
    with pytest.raises(ArtstyleError, match=name):
        coerce(name, value)


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 16},
        {"content_weight_blend": 1.5},
        {"pooling": "median"},
        {"scales": 0},
        {"style_weight": -1.0},
        {"ema_decay": 1.0},
        {"style_layers": ()},
        {"scale_ratio": 1.0},
    ],
)
def test_invalid_values_are_rejected(changes):
    with pytest.raises(ArtstyleError, match="invalid configuration"):
        StyleConfig().replace(**changes)


def test_literal_choices_cover_the_enumerations():
    choices = literal_choices()
    assert choices["optimizer"] == ("lbfgs", "adam")
    assert set(choices["style_loss"]) == {"gram", "mean_cov", "sliced_wasserstein"}


def test_content_layer_shares_and_active_layers():
    cfg = StyleConfig()
    assert cfg.content_layer_shares() == [("relu4_2", 1.0)]
    assert "relu5_2" not in cfg.active_layers()  # blend 1: the network stops at relu5_1
    half = cfg.replace(content_weight_blend=0.5, content_layers=["relu4_2", "relu5_2", "relu3_2"])
    assert half.content_layer_shares() == [("relu4_2", 0.5), ("relu5_2", 0.25), ("relu3_2", 0.25)]
    assert half.active_layers()[:3] == ["relu4_2", "relu5_2", "relu3_2"]


def test_schema_describes_every_field_for_a_form():
    import dataclasses
    import json

    from artstyle.config import PRESETS, StyleConfig, schema

    s = schema()
    json.dumps(s)  # JSON-ready
    by_name = {f["name"]: f for f in s["fields"]}
    assert list(by_name) == [f.name for f in dataclasses.fields(StyleConfig)]
    assert by_name["optimizer"]["type"] == "choice" and by_name["optimizer"]["choices"] == ["lbfgs", "adam"]
    assert by_name["size"] == {**by_name["size"], "type": "integer", "minimum": 32, "maximum": 16384}
    assert by_name["beta1"]["exclusive_maximum"] is True and by_name["style_layers"]["items"] == "string"
    assert all(f["help"] and f["group"] for f in s["fields"])
    assert set(s["presets"]) == set(PRESETS) and s["presets"]["study-vgg19-adam"]["style_weight"] == 500.0


def test_layering_preset_then_file_then_values(tmp_path):
    from artstyle.config import layered

    f = tmp_path / "c.toml"
    f.write_text('style_weight = 7.0\noptimizer = "lbfgs"\n')
    cfg = layered("study-vgg19-adam", f, {"optimizer": "adam", "size": 64})
    assert (cfg.style_weight, cfg.optimizer, cfg.size, cfg.tv_weight) == (7.0, "adam", 64, 100.0)
    f.write_text("style_weigth = 7.0\n")
    with pytest.raises(ArtstyleError, match=r"c\.toml: unknown setting 'style_weigth'"):
        layered("default", f)


def test_layer_names_are_checked_by_the_config_itself():

    with pytest.raises(ArtstyleError, match="unknown layer"):
        StyleConfig(style_layers=("nope",))
    with pytest.raises(ArtstyleError, match="relu5_4 for vgg16"):
        StyleConfig(network="vgg16", style_layers=("relu1_1", "relu5_4"))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"fps": 0.0}, "--fps must be in (0, 1000]"),
        ({"fps": 5000.0}, "--fps must be in (0, 1000]"),
        ({"frame_iterations": 0}, "--frame-iterations must be in [1, 1000000]"),
        ({"first_iterations": -1}, "--first-iterations must be in [0, 1000000]"),
        ({"temporal_weight": float("nan")}, "--temporal-weight must be a finite number"),
        ({"temporal_weight": -1.0}, "--temporal-weight must not be negative"),
    ],
)
def test_video_options_are_checked_from_their_field_bounds(values, message):
    from artstyle.config import VideoOptions

    VideoOptions().check()
    with pytest.raises(ArtstyleError) as info:
        VideoOptions(**values).check()
    assert message in str(info.value)


def test_style_strength_follows_the_measured_curve_and_leaves_the_default_weight_alone():
    from artstyle.config import DEFAULT_STRENGTH, STRENGTH_CURVE, strength_multiplier, strength_of

    assert StyleConfig().style_strength == DEFAULT_STRENGTH
    assert (
        StyleConfig().applied_style_weight == StyleConfig().style_weight
    )  # (exactly: same images as before)
    values = [strength_multiplier(s) for s in range(101)]
    assert values[0] == 0 and values == sorted(values) and values[-1] == pytest.approx(STRENGTH_CURVE[-1][1])
    for s, m in STRENGTH_CURVE:
        assert strength_multiplier(s) == pytest.approx(m) and strength_of(m) == pytest.approx(s)
    assert StyleConfig(style_strength=0).applied_style_weight == 0  # the photo
    half = StyleConfig(style_weight=20, style_strength=DEFAULT_STRENGTH / 2).applied_style_weight
    assert 20 / 16 < half < 20 / 4  # "half as much style" is a fraction of the weight (about 1/9)
    for bad in (-1, 101):
        with pytest.raises(ArtstyleError, match="style_strength"):
            StyleConfig(style_strength=bad)
