"""Labels people read (issue 20, item 4): a class target by its class name, on grids and pages."""

import pytest
from conftest import compose_cfg

from genviz.app import generate, save
from genviz.classes import imagenet
from genviz.report import write_run_page
from genviz.runs import result_label
from genviz.targets import target_label


@pytest.mark.parametrize(
    "target,label",
    [
        ("class:1", "goldfish (class:1)"),
        ("class:n01443537", "goldfish (class:n01443537)"),
        ("class:goldfish", "goldfish"),  # it already says so
        ("class:soccer_ball", "soccer ball"),
        ("class:lemon+class:ladybug", "lemon + ladybug"),  # a compound names both, in typed order
        ("class:951+class:301", "lemon + ladybug (class:951+class:301)"),
        ("0.7*class:crib+0.3*class:cradle", "0.7*crib + 0.3*cradle"),
        ("-1*class:1", "-1*goldfish (-1*class:1)"),
        ("channel:blocks5:3", "channel:blocks5:3"),  # no class: as typed
        ("class:1+channel:blocks5:3", "goldfish + channel:blocks5:3 (class:1+channel:blocks5:3)"),
    ],
)
def test_target_label_names_the_classes(target, label):
    assert target_label(target, imagenet()) == label


def test_run_page_grid_and_curves_use_the_label(tmp_path, monkeypatch):
    cfg = compose_cfg(
        "visualize",
        ["classifier=tiny", "progress=false", "out_dir=unused", "method=pixel", "method.steps=3",
         "target=[class:1,class:2+class:3,layer:relu3]"],
    )  # fmt: skip
    res = generate(cfg)
    labels = ["class_1 (class:1)", "class_2 + class_3 (class:2+class:3)", "layer:relu3"]
    assert [r["label"] for r in res] == labels  # the tiny classifier's classes are class_0 .. class_9
    drawn = []
    monkeypatch.setattr(
        "genviz.app.grid", lambda images, labels: drawn.extend(labels) or _grid(images, labels)
    )
    save(res, tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "<b>class_1 (class:1)</b>" in page and "<b>class_2 + class_3 (class:2+class:3)</b>" in page
    assert [d.rsplit(" ", 1)[0] for d in drawn] == [r["label"] for r in res]


def _grid(images, labels):
    from genviz.images import grid

    return grid(images, labels)


def test_a_row_without_a_label_is_shown_by_its_target(tmp_path):
    """A run written before labels existed: its target as typed."""
    row = {"target": "class:7", "activation": 1.0, "status": "ok"}
    assert result_label(row) == "class:7"
    write_run_page([row], tmp_path)
    assert "<b>class:7</b>" in (tmp_path / "index.html").read_text()
