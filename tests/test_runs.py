"""results.json: the per-target record (TargetResult), its writer and reader, statuses, names."""

import json
import math

import pytest
from conftest import TINY, compose_cfg

from genviz.app import generate, save
from genviz.runs import (
    STATUS_NAN,
    RunFileError,
    TargetResult,
    read_entry,
    read_results,
    result_name,
    result_ok,
    result_status,
    slug,
    write_entry,
    write_results,
)

FRESH_KEYS = [
    "target", "activation", "classes", "class_names", "prob", "probs", "rank", "ranks", "top5",
    "optimized_activation", "dead_start", "status", "steps", "seconds", "seed", "method",
]  # fmt: skip


def fresh(**kw) -> TargetResult:
    values = dict(
        target="class:1", activation=2.5, classes=[1], class_names=["b"], prob=0.5, probs=[0.5],
        rank=1, ranks=[1], top5=[[1, "b", 0.5]], optimized_activation=2.4, dead_start=False,
        status="ok", steps=3, seconds=0.1, seed=0, method="generator_prior",
    )  # fmt: skip
    values.update(kw)
    return TargetResult(**values)


def test_fresh_record_has_the_visualize_keys_in_order():
    assert list(fresh().to_dict()) == FRESH_KEYS
    d = fresh(minimizing=True, history=[1.0], image="images/a.png", gif="frames/a.gif").to_dict()
    assert list(d) == [*FRESH_KEYS[:9], "minimizing", *FRESH_KEYS[9:], "history", "image", "gif"]
    mem = fresh(tensor="T", frames=["F"], history=[1.0]).to_dict(memory=True)
    assert list(mem)[-3:] == ["tensor", "frames", "history"]
    atlas = fresh(history=[1.0]).without("history").replace(key="class_0001", label="1 b", image="i.png")
    assert list(atlas.to_dict())[-3:] == ["key", "label", "image"]


def test_old_row_reads_and_writes_back_unchanged(tmp_path):
    """A row of an older results.json (no status, no probs, an unknown key) keeps its keys,
    their order and values through read and write: the same bytes."""
    old = {"target": "class:0", "classes": [0], "image": "images/a.png", "activation": 1.5,
           "minimizing": False, "some_old_key": {"x": 1}, "prob": 0.25}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"config": {"classifier": "tiny"}, "results": [old]}, indent=1))
    config, (r,) = read_results(path)
    assert config == {"classifier": "tiny"} and r.prob == 0.25 and r.extra == {"some_old_key": {"x": 1}}
    assert r.status == "ok" and not r.has("status") and result_ok(r)
    assert list(r.to_dict()) == list(old)
    write_results(tmp_path / "again.json", [r], config, config_first=True)
    assert (tmp_path / "again.json").read_text() == path.read_text()
    # a status set later is added at the end, as a dict update would
    assert list(r.replace(status=STATUS_NAN).to_dict()) == [*old, "status"]
    nan = TargetResult.from_dict({**old, "activation": math.nan, "status": "ok"})
    assert result_status(nan) == STATUS_NAN and not result_ok(nan)


def test_write_results_layouts(tmp_path):
    p = write_results(tmp_path / "r.json", [fresh()], {"seed": 0})
    assert list(json.loads(p.read_text())) == ["results", "config"]
    p = write_results(tmp_path / "r.json", [fresh()], {"seed": 0}, config_first=True)
    assert list(json.loads(p.read_text())) == ["config", "results"]
    assert list(json.loads(write_results(tmp_path / "r.json", [fresh()]).read_text())) == ["results"]
    write_entry(tmp_path / "e.json", fresh())
    assert read_entry(tmp_path / "e.json").to_dict() == fresh().to_dict()
    (tmp_path / "bad.json").write_text("[1]")
    assert read_entry(tmp_path / "bad.json") is None and read_entry(tmp_path / "none.json") is None


@pytest.mark.parametrize("text", ["[]", "", '{"results": [1]}', '{"config": [1], "results": []}', "{"])
def test_read_results_names_a_bad_file(tmp_path, text):
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(RunFileError, match="results.json"):
        read_results(tmp_path / "results.json")


def test_status_of_a_record_and_of_its_dict_agree():
    for r in (
        fresh(),
        fresh(status="dead"),
        fresh(activation=math.inf),
        fresh(probs=[math.nan]),
        fresh(prob=None),
    ):
        assert result_status(r) == result_status(r.to_dict())
    assert result_ok(fresh()) and not result_ok(fresh(probs=[math.nan]))


def test_file_names():
    target = "class:goldfish+-1*class:great white shark, Carcharodon carcharias, and more words"
    assert result_name(3, target) == "003_" + slug(target)[:60]
    assert result_name(0, "class:goldfish") == "000_class_goldfish"
    assert slug("blocks4.0/conv") == "blocks4_0_conv" and slug(7) == "7"


def test_generate_save_and_read_agree(tmp_path):
    cfg = compose_cfg(
        "visualize", [*TINY, "generator.steps=2", "target=[class:0,-1*class:2]", "frames_every=1"]
    )
    results = generate(cfg)
    assert all(isinstance(r, dict) for r in results)  # the Python API's results stay plain dicts
    # a visualize row also has its label (the target as people read it: class_0 (class:0))
    assert list(results[0]) == [*FRESH_KEYS, "tensor", "frames", "history", "label"]
    assert results[0]["label"] == "class_0 (class:0)"
    assert results[1]["minimizing"] is True and "minimizing" not in results[0]
    save(results, tmp_path, cfg)
    text = (tmp_path / "results.json").read_text()
    data = json.loads(text)
    rows = [{k: v for k, v in r.items() if k not in ("tensor", "frames")} for r in results]
    assert data["results"] == json.loads(json.dumps(rows)) and list(data) == ["results", "config"]
    assert [list(r) for r in data["results"]] == [list(r) for r in rows]
    assert rows[0]["image"] == "images/000_class_0.png" and rows[0]["gif"] == "frames/000_class_0.gif"
    _, read = read_results(tmp_path / "results.json")
    assert [r.to_dict() for r in read] == data["results"]
    write_results(tmp_path / "again.json", read, data["config"])
    assert (tmp_path / "again.json").read_text() == text
