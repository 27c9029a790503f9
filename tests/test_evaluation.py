"""Evaluation: a real image scores as its class and is plausible; a grey image is not."""

import json
import math
import shutil

import pytest
import torch

from genviz import evaluation as E
from genviz import references as R
from genviz.classifiers import build_classifier
from genviz.images import EVAL_CROP, load_image, save_png

# a small, varied subset of the shared folder: fish, bird, dog, insect, buildings, food, objects
SUBSET = [0, 1, 94, 207, 309, 668, 949, 963]


@pytest.fixture(scope="module")
def shared():
    folder = R.default_reference_dir()
    if not folder.is_dir():
        pytest.skip(f"shared reference images not found at {folder} (set GENVIZ_SHARED)")
    return folder


@pytest.fixture(scope="module")
def lite1():
    return build_classifier("efficientnet_lite1")


@pytest.fixture(scope="module")
def refs(shared, lite1, tmp_path_factory):
    ref = R.load_reference(shared, lite1.classes, SUBSET)
    return R.reference_embeddings(lite1, ref, cache_dir=tmp_path_factory.mktemp("cache"))


def test_reference_layout(shared):
    ref = R.load_reference(shared)
    assert len(ref) == 1000
    assert ref.classes[668] == 668 and "mosque" in ref.files[668].name
    assert len(ref.subset([0, 668])) == 2


def test_real_image_scores_as_its_class_and_is_plausible(shared, lite1, refs):
    ref = R.load_reference(shared, lite1.classes, SUBSET)
    # not the reference pixels themselves: a mirrored, tighter crop
    imgs = torch.stack(
        [load_image(f, 280, crop_fraction=EVAL_CROP).flip(-1)[:, 20:260, 20:260] for f in ref.files]
    )
    rows = E.score(lite1, imgs, [[c] for c in ref.classes], refs)
    assert all(r["top5"] for r in rows), [(r["top1_class"], r["top5_classes"]) for r in rows]
    assert sum(r["top1"] for r in rows) >= len(rows) - 1
    assert all(r["plausibility"] == 1 for r in rows), [r["plausibility"] for r in rows]
    s = E.summarize(rows)
    assert s["plausibility_median"] == 1 and s["top5"] == 1.0


def test_grey_image_does_not(lite1, refs):
    grey = torch.full((1, 3, 240, 240), 0.5).expand(len(SUBSET), -1, -1, -1)
    rows = E.score(lite1, grey, [[c] for c in SUBSET], refs)
    assert not any(r["top1"] for r in rows)
    assert sum(r["top5"] for r in rows) <= 1
    assert max(r["prob"] for r in rows) < 0.2
    # one image has one nearest reference: at most one of the targets can be rank 1
    assert sum(r["plausibility"] == 1 for r in rows) <= 1
    assert sorted(r["plausibility"] for r in rows) == list(range(1, len(SUBSET) + 1))


def test_compound_and_channel_targets(lite1, refs, shared):
    tench = load_image(shared / "n01440764_tench.JPEG", 240, crop_fraction=EVAL_CROP)[None]
    rows = E.score(lite1, tench.expand(3, -1, -1, -1), [[0, 668], [0, 1], []], refs)
    assert rows[0]["top5"] is False  # mosque is not in a tench photo's top five
    assert rows[0]["top1"] is True
    assert rows[2]["top1"] is None and math.isnan(rows[2]["prob"])
    assert "tench" in rows[2]["nearest"]


def test_cache_is_reused(shared, lite1, tmp_path, monkeypatch):
    ref = R.load_reference(shared, lite1.classes, [0, 1])
    first = R.reference_embeddings(lite1, ref, batch_size=2, cache_dir=tmp_path)
    assert len(list((tmp_path / "embeddings").glob("efficientnet_lite1_*.pt"))) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(R, "forward_embed", boom)
    again = R.reference_embeddings(lite1, ref, cache_dir=tmp_path)
    assert torch.equal(first.embeddings, again.embeddings)


def test_unreadable_references_are_skipped_and_counted(shared, lite1, tmp_path, caplog):
    folder = tmp_path / "refs"
    folder.mkdir()
    shutil.copy(shared / "n01440764_tench.JPEG", folder)
    (folder / "n01443537_goldfish.JPEG").write_bytes(b"not a jpeg")
    (folder / "n01484850_shark.JPEG").write_bytes(b"")
    ref = R.load_reference(folder, lite1.classes)
    assert ref.classes == [0, 1, 2]
    with caplog.at_level("WARNING"):
        emb = R.reference_embeddings(lite1, ref, cache_dir=tmp_path / "c")
    assert len(emb.files) == 1 and len(emb.skipped) == 2
    warnings = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2" in warnings[0].getMessage()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(R.ReferenceFolderError, match="reference_dir="):
        R.load_reference(tmp_path / "nope")


def test_evaluate_run_writes_csv_and_markdown(shared, lite1, tmp_path):
    run = tmp_path / "run"
    save_png(
        load_image(shared / "n03788195_mosque.JPEG", 224, crop_fraction=EVAL_CROP),
        run / "images/000_class_mosque.png",
    )
    save_png(torch.full((3, 224, 224), 0.5), run / "images/001_class_tench.png")
    results = [
        {
            "target": "class:mosque",
            "classes": [668],
            "image": "images/000_class_mosque.png",
            "activation": 9.0,
        },
        {"target": "class:tench", "classes": [0], "image": "images/001_class_tench.png", "activation": 0.1},
        {"target": "class:goldfish", "classes": [1], "image": "images/002.png", "status": "dead"},
    ]
    (run / "results.json").write_text(json.dumps({"config": {"classifier": "tiny"}, "results": results}))
    rows, summary = E.evaluate_run(
        run, evaluators=[lite1], reference_dir=shared, reference_classes=SUBSET, cache_dir=tmp_path / "c"
    )
    assert [r["top1"] for r in rows] == [True, False]
    assert rows[0]["plausibility"] == 1 and rows[0]["activation"] == 9.0
    assert summary[0]["top1"] == 0.5 and summary[0]["not_ok"] == 1  # the dead one is not scored
    csv_text = (run / "evaluation.csv").read_text()
    assert csv_text.count("\n") == 3 and "plausibility" in csv_text.splitlines()[0]
    md = (run / "evaluation.md").read_text()
    assert "| efficientnet_lite1 | 2 | 0.500 |" in md and "class:mosque" in md
