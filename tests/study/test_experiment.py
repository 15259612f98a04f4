import json

import pytest
from click.testing import CliRunner
from PIL import Image

from artstyle.apps.cli import main
from artstyle.apps.study.experiment import load_experiment, parse_experiment, plan
from artstyle.apps.study.runner import run_experiment
from artstyle.errors import ArtstyleError
from tests.conftest import gradient_image, stripes_image

pytestmark = pytest.mark.usefixtures("tiny_weights")

TINY = {
    "size": 40,
    "scales": 1,
    "iterations": 2,
    "style_layers": ["relu1_1", "relu2_1"],
    "content_layers": ["relu2_2"],
}


@pytest.fixture
def pictures(tmp_path):
    d = tmp_path / "pics"
    (d / "content").mkdir(parents=True)
    (d / "style").mkdir()
    gradient_image(48, 40, seed=1).save(d / "content" / "alpha.png")
    gradient_image(40, 48, seed=2).save(d / "content" / "beta.jpg")
    stripes_image().save(d / "style" / "stripes.png")
    gradient_image(44, 44, seed=9).convert("L").save(d / "style" / "gray.png")
    return d


def write(tmp_path, text):
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def tiny_base():
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())


def test_product_of_axes_and_named_variants(tmp_path, pictures):
    p = write(
        tmp_path,
        f"""
[experiment]
name = "sweep"
content = ["pics/content/alpha.png"]
style = ["pics/style"]
[base]
{tiny_base()}
[axes]
style_weight = [5, 15]
pooling = ["avg", "max"]
[[variants]]
name = "A"
[[variants]]
name = "B"
optimizer = "adam"
""",
    )
    exp = load_experiment(p)
    assert len(exp.variants) == 8 and len(exp.styles) == 2
    assert exp.variants[0].name == "A, style_weight=5, pooling=avg"
    assert exp.config_for(exp.variants[-1]).optimizer == "adam"
    specs = plan(exp, tmp_path / "out")
    assert len(specs) == 16 and len({s.output for s in specs}) == 16


def test_sweep_outputs_report_and_resume(tmp_path, pictures):
    p = write(
        tmp_path,
        f"""
[experiment]
name = "pool"
description = "pooling on two photos"
content = ["content"]
style = ["style/stripes.png"]
[base]
{tiny_base()}
[axes]
pooling = ["avg", "max"]
""",
    )
    out = tmp_path / "out"
    exp = load_experiment(p, images_dir=pictures)
    outcomes = run_experiment(exp, out, progress=False)
    assert [o.status for o in outcomes] == ["done"] * 4
    names = sorted(f.name for f in (out / "images").glob("*.png"))
    assert names == [
        "alpha__stripes__pooling=avg.png",
        "alpha__stripes__pooling=max.png",
        "beta__stripes__pooling=avg.png",
        "beta__stripes__pooling=max.png",
    ]
    assert all((out / "images" / (n + ".json")).exists() for n in names)
    for f in [
        "sheets/compare__alpha__stripes.png",
        "sheets/grid__pooling=avg.png",
        "plots/loss__beta__stripes.png",
        "results.csv",
        "report.md",
        "report.html",
        "experiment.json",
    ]:
        assert (out / f).exists(), f
    md = (out / "report.md").read_text()
    assert "sheets/compare__alpha__stripes.png" in md and "plots/loss__alpha__stripes.png" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") >= 4 and "src='sheets" not in html  # self-contained
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("content,style,variant,status,iterations,seconds")
    # Re-running skips the finished runs; a changed setting re-runs them.
    again = run_experiment(load_experiment(p, images_dir=pictures), out, progress=False)
    assert [o.status for o in again] == ["skipped"] * 4
    changed = run_experiment(
        load_experiment(p, images_dir=pictures, overrides={"seed": 3}), out, progress=False
    )
    assert [o.status for o in changed] == ["done"] * 4


def test_a_failed_run_is_reported_and_the_rest_go_on(tmp_path, pictures):
    (pictures / "style" / "broken.png").write_bytes(b"not an image")
    exp = parse_experiment(
        {"base": TINY},
        "x",
        base_dir=tmp_path,
        content=[pictures / "content" / "alpha.png"],
        style=[pictures / "style" / "broken.png", pictures / "style" / "stripes.png"],
    )
    outcomes = run_experiment(exp, tmp_path / "out", progress=False)
    assert [o.status for o in outcomes] == ["failed", "done"]
    assert "not an image" in outcomes[0].message
    assert "failed" in (tmp_path / "out" / "results.csv").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[base]\nstyle_wieght = 3", r"exp.toml: \[base\]: unknown setting 'style_wieght'"),
        ("[base]\nsize = 'big'", r"\[base\]: setting 'size' expects a whole number"),
        ("[axes]\npooling = []", r"\[axes\] pooling is empty"),
        ("[axes]\npooling = ['avg', 'median']", r"variant 'pooling=median'.*pooling must be one of"),
        ("[axes]\nstyle_weight = 5", r"\[axes\] style_weight must be a list"),
        ("[bases]\nsize = 3", r"unknown table\(s\) bases"),
        (
            "[[variants]]\nname = 'x'\nlearning_rat = 1",
            r"\[\[variants\]\] 'x': unknown setting 'learning_rat'",
        ),
        ("[base\nsize = 3", r"not valid TOML"),
        ("[quick]\nsize = -3", r"\[quick\]"),
    ],
)
def test_bad_configs_are_rejected_before_work(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(ArtstyleError, match=message):
        load_experiment(p, content=[tmp_path], style=[tmp_path])


def test_missing_images_are_listed_at_once(tmp_path):
    p = write(tmp_path, '[experiment]\ncontent = ["a.jpg", "b.jpg"]\nstyle = ["c.jpg"]\n')
    with pytest.raises(ArtstyleError, match=r"3 image\(s\) not found: .*a.jpg.*b.jpg.*c.jpg"):
        load_experiment(p)


def test_quick_applies_the_files_quick_table(tmp_path, pictures):
    p = write(tmp_path, "[base]\nsize = 512\n[quick]\nsize = 64\niterations = 3\n")
    exp = load_experiment(p, content=[pictures / "content"], style=[pictures / "style"], quick=True)
    assert (exp.base.size, exp.base.iterations) == (64, 3)
    assert load_experiment(p, content=[pictures / "content"], style=[pictures / "style"]).base.size == 512


def test_grid_command_sheet_layout(tmp_path, pictures):
    out = tmp_path / "g"
    args = [
        "grid",
        "--content",
        str(pictures / "content" / "alpha.png"),
        str(pictures / "content" / "beta.jpg"),
        "--style",
        str(pictures / "style"),
        "-o",
        str(out),
        "-q",
    ]
    for k, v in TINY.items():
        args += [f"--{k.replace('_', '-')}", ",".join(v) if isinstance(v, list) else str(v)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    sheet = Image.open(out / "sheets" / "grid.png")
    # header row + 2 photos; header column + 2 paintings: cells of 192 + 2*6 px wide
    assert sheet.width == 3 * 204
    assert len(list((out / "images").glob("*.png"))) == 4
    # the header column is shaded and a result cell is not
    px = sheet.convert("RGB")
    assert px.getpixel((2, sheet.height - 3)) == (236, 236, 240)
    assert px.getpixel((sheet.width - 3, sheet.height - 3)) == (255, 255, 255)


def test_experiment_command_exit_codes(tmp_path, pictures):
    p = write(tmp_path, f"[base]\n{tiny_base()}\n[axes]\nseed = [1, 2]\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(
        main,
        [
            "experiment",
            str(p),
            "-o",
            str(out),
            "--content",
            str(pictures / "content"),
            "--style",
            str(pictures / "style" / "stripes.png"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "4 of 4 runs done" in res.output
    bad = write(tmp_path, "[axes]\nseed = []\n")
    res = CliRunner().invoke(main, ["experiment", str(bad), "-o", str(out), "--content", str(pictures)])
    assert (
        res.exit_code == 1
        and res.output.strip().startswith("artstyle: error:")
        and "Traceback" not in res.output
    )


def test_variant_preset_keeps_the_explicit_base_settings(tmp_path, pictures):
    p = write(
        tmp_path,
        """
[base]
size = 96
time_limit = 5.0
[[variants]]
name = "adam"
preset = "study-vgg19-adam"
[[variants]]
name = "lbfgs16"
preset = "study-vgg16-lbfgs"
tv_weight = 2.0
""",
    )
    exp = load_experiment(p, content=[pictures / "content"], style=[pictures / "style"])
    adam, lbfgs16 = (exp.config_for(v) for v in exp.variants)
    assert (adam.optimizer, adam.style_weight, adam.size, adam.time_limit) == ("adam", 500.0, 96, 5.0)
    assert (lbfgs16.network, lbfgs16.content_weight, lbfgs16.tv_weight, lbfgs16.size) == (
        "vgg16",
        0.05,
        2.0,
        96,
    )
    quick = load_experiment(p, content=[pictures / "content"], style=[pictures / "style"], quick=True)
    assert quick.config_for(quick.variants[0]).size == 192  # [quick] (default table) is explicit too


def test_shipped_experiments_are_found_by_name() -> None:
    from artstyle.apps.study.experiment import find_experiment, shipped_experiments

    shipped = shipped_experiments()
    assert {"pooling", "study_grid", "style_weight"} <= set(shipped)
    assert find_experiment("pooling") == shipped["pooling"] and shipped["pooling"].is_file()
    with pytest.raises(ArtstyleError, match="no such experiment file or shipped experiment"):
        find_experiment("nonesuch")
    assert find_experiment("mine.toml").name == "mine.toml"  # a path is left to the loader
