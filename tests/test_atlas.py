"""Atlas: class ranges, sharding, resume after a crash, the three sheets (tiny classifier)."""

import json

import pytest
from conftest import Counting, compose_cfg
from PIL import Image

from genviz.atlas import parse_range, run_atlas, shard_items


def atlas_cfg(tmp_path, *overrides):
    return compose_cfg(
        "atlas",
        [
            "classifier=tiny",
            "generator=tiny",
            "generator.steps=2",
            f"out_dir={tmp_path / 'atlas'}",
            "cell=32",
            *overrides,
        ],
    )


def test_parse_range_and_shards():
    assert parse_range("0:100", 1000) == list(range(100))
    assert parse_range("all", 5) == [0, 1, 2, 3, 4]
    assert parse_range(":3", 5) == [0, 1, 2] and parse_range("7", 10) == [7]
    assert parse_range(["a", 3], 10, resolve=lambda s: 9) == [9, 3]
    with pytest.raises(ValueError):
        parse_range("5:5", 10)
    items = list(range(10))
    shards = [shard_items(items, k, 4) for k in range(4)]
    assert sum(shards, []) == items and all(2 <= len(s) <= 3 for s in shards)
    with pytest.raises(ValueError):
        shard_items(items, 4, 4)


def test_resume_renders_only_the_missing_image(tmp_path):
    cfg = atlas_cfg(tmp_path, "classes=0:6", "batch_size=4", "per_sheet=4")
    gen = Counting()
    first = run_atlas(cfg, generate_fn=gen)
    assert (first["total"], first["rendered"], first["skipped"], first["missing"]) == (6, 6, 0, 0)
    assert len(gen.targets) == 6
    out = tmp_path / "atlas"
    assert len(list((out / "images").glob("class_*.png"))) == 6
    assert len(json.loads((out / "results.json").read_text())["results"]) == 6

    (out / "images" / "class_0003.png").unlink()  # a crash lost this one
    gen = Counting()
    again = run_atlas(cfg, generate_fn=gen)
    assert (again["rendered"], again["skipped"]) == (1, 5)
    assert gen.targets == ["class:3"]
    assert (out / "images" / "class_0003.png").exists()

    gen = Counting()
    assert run_atlas(cfg, generate_fn=gen)["rendered"] == 0 and gen.targets == []

    # 6 classes, 4 per sheet: two labelled sheets of 10 columns
    names = sorted(p.name for p in (out / "sheets").glob("*.png"))
    assert names == ["classes_0000-0003.png", "classes_0004-0005.png"]


def test_shards_split_the_work(tmp_path):
    counts = [run_atlas(atlas_cfg(tmp_path, "classes=0:5", f"shard={k}", "num_shards=2")) for k in (0, 1)]
    assert [c["rendered"] for c in counts] == [2, 3]
    assert counts[0]["missing"] == 3 and counts[1]["missing"] == 0
    entry = json.loads((tmp_path / "atlas" / "entries" / "class_0004.json").read_text())
    assert entry["target"] == "class:4" and entry["image"] == "images/class_0004.png"


def test_layer_and_compound_sheets(tmp_path):
    layer = run_atlas(atlas_cfg(tmp_path, "sheet=layer", "layer=relu2", "channels=0:6"))
    assert layer["total"] == 6 and layer["sheets"][0].name == "layer_relu2_0000-0005.png"
    with Image.open(layer["sheets"][0]) as im:  # 8 columns of 32 px cells
        assert im.size[0] == 8 * (32 + 4) + 4
    with pytest.raises(ValueError, match="16 channels"):
        run_atlas(atlas_cfg(tmp_path, "sheet=layer", "layer=relu2", "channels=10:20"))

    comp = run_atlas(atlas_cfg(tmp_path, "sheet=compound", "pairs=[[1,2],[1,3]]"))
    # singles are shared between pairs: 1, 1+2, 2, 1+3, 3
    assert comp["total"] == 5 and comp["rendered"] == 5
    with Image.open(comp["sheets"][0]) as im:  # two rows a | a+b | b
        assert im.size[0] == 3 * 36 + 4 and im.size[1] == 2 * (32 + 4 + 14) + 4
