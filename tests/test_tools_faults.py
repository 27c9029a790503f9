"""Bad inputs and faults of the atlas, audit, evaluate and sweep tools: each gives one
clear error (exit code 2 from the command line) before any heavy work, or the right result.
Tiny classifier, tiny generator, a two-image reference folder: seconds each on CPU."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, Counting, atlas_cfg, compose_cfg
from PIL import Image

from genviz import atlas as A
from genviz import audit as AU
from genviz import evaluation as E
from genviz import references as R
from genviz import runs
from genviz import sweep as S
from genviz.app import generate
from genviz.classifiers import build_classifier

# ---------------------------------------------------------------------------------------------
# helpers


def tiny_refs(tmp_path):
    """Two real images: tench (class 0) and goldfish (class 1), flat <wnid>_*.png layout."""
    folder = tmp_path / "refs"
    folder.mkdir(exist_ok=True)
    for wnid, name, colour in (
        ("n01440764", "tench", (200, 60, 40)),
        ("n01443537", "goldfish", (40, 90, 200)),
    ):
        Image.new("RGB", (40, 40), colour).save(folder / f"{wnid}_{name}.png")
    return folder


def audit_cfg(tmp_path, *overrides):
    return compose_cfg(
        "audit",
        [
            "classifier=tiny",
            "generator=tiny",
            "steps=2",
            "progress=false",
            "classes=[0,1]",
            f"reference_dir={tiny_refs(tmp_path)}",
            f"cache_dir={tmp_path / 'cache'}",
            f"out_dir={tmp_path / 'audit'}",
            "thumb=32",
            "nearest=2",
            *overrides,
        ],
    )


def never(*args, **kwargs):
    raise AssertionError("heavy work started before the config was checked")


def cli(script, *args):
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def one_line_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def write_run(run, results, image_ok=True):
    """A visualize run directory: results.json and the PNGs it names."""
    for r in results:
        if r.get("image"):
            colour = (200, 60, 40) if image_ok else (0, 0, 0)
            (run / r["image"]).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), colour).save(run / r["image"])
    (run / "results.json").write_text(json.dumps({"config": {"classifier": "tiny"}, "results": results}))


# ---------------------------------------------------------------------------------------------
# 1. a 0-byte or unreadable PNG is not "done"


def test_resume_redoes_empty_truncated_or_unreadable_outputs(tmp_path):
    cfg = atlas_cfg(tmp_path, "classes=0:5", "batch_size=5")
    first = A.run_atlas(cfg, generate_fn=Counting())
    assert first["rendered"] == 5 and first["missing"] == 0
    out = tmp_path / "atlas"
    (out / "images" / "class_0001.png").write_bytes(b"")  # killed while writing: 0 bytes
    data = (out / "images" / "class_0002.png").read_bytes()
    (out / "images" / "class_0002.png").write_bytes(data[: len(data) // 2])  # truncated
    (out / "images" / "class_0003.png").write_bytes(b"not a png at all")
    (out / "entries" / "class_0004.json").write_text('{"target": "cla')  # truncated entry

    gen = Counting()
    again = A.run_atlas(cfg, generate_fn=gen)
    assert gen.targets == ["class:1", "class:2", "class:3", "class:4"]
    assert (again["rendered"], again["skipped"], again["missing"]) == (4, 1, 0)
    for k in range(5):
        with Image.open(out / "images" / f"class_{k:04d}.png") as im:
            im.load()
    assert len(json.loads((out / "results.json").read_text())["results"]) == 5


def test_sheets_and_results_survive_an_unreadable_entry(tmp_path):
    cfg = atlas_cfg(tmp_path, "classes=0:3")
    A.run_atlas(cfg)
    out = tmp_path / "atlas"
    (out / "entries" / "class_0001.json").write_text("[1, 2")  # garbage
    counts = A.run_atlas(atlas_cfg(tmp_path, "classes=0:3", "sheets_only=true"))
    assert counts["missing"] == 1
    assert len(json.loads((out / "results.json").read_text())["results"]) == 2


# ---------------------------------------------------------------------------------------------
# 2. class ranges: one error naming the key and the valid range


@pytest.mark.parametrize(
    "spec,words",
    [
        ("10", ["classes=10", "0..9"]),
        ("[3,10]", ["classes=[3,10]", "0..9"]),
        ("[-1]", ["classes=[-1]", "0..9"]),
        ("5:20", ["classes=5:20", "0:10"]),
        ("[]", ["classes=[]"]),
    ],
)
def test_atlas_classes_out_of_range(tmp_path, spec, words):
    with pytest.raises(ValueError) as e:
        A.run_atlas(atlas_cfg(tmp_path, f"classes={spec}"), generate_fn=never)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_atlas_bad_pairs_and_channels_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"pairs.*0\.\.9"):
        A.run_atlas(atlas_cfg(tmp_path, "sheet=compound", "pairs=[[1,10]]"), generate_fn=never)
    with pytest.raises(ValueError, match="pairs"):
        A.run_atlas(atlas_cfg(tmp_path, "sheet=compound", "pairs=[[1,2,3]]"), generate_fn=never)
    with pytest.raises(ValueError, match="channels"):
        A.run_atlas(atlas_cfg(tmp_path, "sheet=layer", "layer=relu2", "channels=[]"), generate_fn=never)
    with pytest.raises(ValueError, match="sheet"):
        A.run_atlas(atlas_cfg(tmp_path, "sheet=bogus"), generate_fn=never)
    with pytest.raises(ValueError, match="steps"):
        A.run_atlas(atlas_cfg(tmp_path, "steps=abc"), generate_fn=never)
    with pytest.raises(ValueError, match="per_sheet"):
        A.run_atlas(atlas_cfg(tmp_path, "per_sheet=0"), generate_fn=never)


@pytest.mark.parametrize(
    "spec,words",
    [("[]", ["classes=[]"]), ("[0,10]", ["classes=[0,10]", "0..9"]), ("[nosuchclass]", ["classes="])],
)
def test_audit_classes_bad(tmp_path, monkeypatch, spec, words):
    monkeypatch.setattr(AU, "reference_embeddings", never)
    with pytest.raises(ValueError) as e:
        AU.run_audit(audit_cfg(tmp_path, f"classes={spec}"), generate_fn=never)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_audit_single_class_is_a_list_of_one(tmp_path, monkeypatch):
    seen = []

    def record(cfg, classifier=None):
        seen.append(list(cfg.target))
        raise AssertionError("stop")

    with pytest.raises(AssertionError, match="stop"):
        AU.run_audit(audit_cfg(tmp_path, "classes=1"), generate_fn=record)
    assert seen == [["class:1"]]  # not the characters of "1"... nor of "crib"


def test_cli_atlas_class_out_of_range_is_one_line(tmp_path):
    p = cli("atlas.py", "classifier=tiny", "generator=tiny", "classes=10", f"out_dir={tmp_path / 'a'}")
    one_line_error(p, "classes=10", "0..9")


def test_cli_audit_empty_classes_is_one_line(tmp_path):
    p = cli("audit.py", "classifier=tiny", "generator=tiny", "classes=[]", f"out_dir={tmp_path / 'a'}")
    one_line_error(p, "classes=[]")


# ---------------------------------------------------------------------------------------------
# 3. evaluate.py on a results.json that is not one


@pytest.mark.parametrize(
    "text",
    [
        "[]",  # a list
        '[{"target": "class:1"}]',
        '{"results": [{"target": "class:1", "image": "im',  # truncated
        "",  # empty
        '{"config": {}}',  # no results
        '{"results": {"a": 1}}',
        '{"results": [1, 2]}',
        '{"config": [1], "results": []}',
    ],
)
def test_evaluate_bad_results_json_names_the_file(tmp_path, text):
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(ValueError) as e:
        E.evaluate_run(tmp_path, evaluators=[])
    msg = str(e.value)
    assert str(tmp_path / "results.json") in msg and "\n" not in msg, msg


def test_evaluate_binary_results_json_names_the_file(tmp_path):
    (tmp_path / "results.json").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="results.json"):
        E.read_run(tmp_path)


def test_cli_evaluate_list_results_is_one_line(tmp_path):
    (tmp_path / "results.json").write_text("[1, 2, 3]")
    p = cli("evaluate.py", f"run_dir={tmp_path}", "evaluators=[tiny]")
    one_line_error(p, str(tmp_path / "results.json"))


def test_evaluate_bad_numbers_name_the_key(tmp_path):
    write_run(tmp_path, [{"target": "class:0", "classes": [0], "image": "images/a.png", "activation": 1.0}])
    with pytest.raises(ValueError, match="batch_size"):
        E.evaluate_run(tmp_path, evaluators=[build_classifier("tiny")], batch_size=0)


# ---------------------------------------------------------------------------------------------
# 4. audit: paths and config checked before embedding the reference set


@pytest.mark.parametrize(
    "kind", ["missing", "garbage", "directory", "reference_dir", "data_dir", "thumb", "thumb_huge"]
)
def test_audit_checks_paths_before_heavy_work(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(AU, "reference_embeddings", never)
    monkeypatch.setattr(R, "reference_embeddings", never)
    monkeypatch.setattr(R, "forward_embed", never)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(256))
    (tmp_path / "adir.ckpt").mkdir()
    override, word = {
        "missing": (f"checkpoint={tmp_path / 'none.ckpt'}", "checkpoint="),
        "garbage": (f"checkpoint={garbage}", "checkpoint="),
        "directory": (f"checkpoint={tmp_path / 'adir.ckpt'}", "checkpoint="),
        "reference_dir": (f"reference_dir={tmp_path / 'nope'}", "reference_dir="),
        "data_dir": (f"data_dir={tmp_path / 'nope'}", "data_dir="),
        "thumb": ("thumb=0", "thumb="),
        "thumb_huge": ("thumb=60000", "thumb=60000: must be at most"),  # ran out of memory after the work
    }[kind]
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        AU.run_audit(audit_cfg(tmp_path, override), generate_fn=never)
    assert word in str(e.value), str(e.value)


# ---------------------------------------------------------------------------------------------
# 5. output directories checked first; results written atomically


def test_atlas_unwritable_out_dir_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="out_dir="):
        A.run_atlas(atlas_cfg(tmp_path, f"out_dir={tmp_path / 'afile' / 'atlas'}"), generate_fn=never)
    (tmp_path / "atlas2").mkdir()
    (tmp_path / "atlas2" / "images").write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir="):
        A.run_atlas(atlas_cfg(tmp_path, f"out_dir={tmp_path / 'atlas2'}"), generate_fn=never)


def test_audit_unwritable_out_dir_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(AU, "reference_embeddings", never)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="out_dir="):
        AU.run_audit(audit_cfg(tmp_path, f"out_dir={tmp_path / 'afile' / 'audit'}"), generate_fn=never)


def test_check_writable_dir_sees_a_read_only_directory(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as root, chmod does not stop writes
    with pytest.raises(ValueError, match="out_dir=.*Permission denied"):
        A.check_writable_dir(tmp_path)


@pytest.mark.parametrize("script", ["atlas.py", "audit.py"])
def test_cli_unwritable_out_dir_is_one_line(tmp_path, script):
    (tmp_path / "afile").write_text("x")
    p = cli(script, "classifier=tiny", "generator=tiny", "classes=[1]", f"out_dir={tmp_path / 'afile' / 'x'}")
    one_line_error(p, "out_dir=", "afile")


def test_results_are_written_atomically(tmp_path, monkeypatch):
    replaced = []
    real = os.replace

    def spy(src, dst, *a, **k):
        replaced.append(os.path.basename(str(dst)))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", spy)
    A.run_atlas(atlas_cfg(tmp_path, "classes=0:2"))
    assert {"class_0000.png", "class_0000.json", "results.json", "classes_0000-0001.png"} <= set(replaced)

    replaced.clear()
    out = AU.run_audit(audit_cfg(tmp_path))
    assert {"audit.html", "audit.png", "audit.json"} <= set(replaced), replaced
    assert json.loads(out["json"].read_text())["classes"][0]["class"] == 0

    replaced.clear()
    run = tmp_path / "run"
    write_run(run, [{"target": "class:0", "classes": [0], "image": "images/a.png", "activation": 1.0}])
    E.evaluate_run(
        run,
        evaluators=[build_classifier("tiny")],
        reference_dir=tiny_refs(tmp_path),
        cache_dir=tmp_path / "c",
    )
    assert {"evaluation.csv", "evaluation.md"} <= set(replaced)


def test_reference_cache_unwritable_or_corrupt_keeps_the_results(tmp_path, caplog):
    clf = build_classifier("tiny")
    ref = R.load_reference(tiny_refs(tmp_path), clf.classes)
    (tmp_path / "cachefile").write_text("x")
    with caplog.at_level("WARNING"):
        emb = E.reference_embeddings(clf, ref, cache_dir=tmp_path / "cachefile")  # cannot be a folder
    assert len(emb.files) == 2 and any("cache" in r.getMessage() for r in caplog.records)

    first = E.reference_embeddings(clf, ref, cache_dir=tmp_path / "c")
    (cached,) = (tmp_path / "c" / "embeddings").glob("*.pt")
    cached.write_bytes(b"garbage")  # a corrupt cache file
    again = E.reference_embeddings(clf, ref, cache_dir=tmp_path / "c")
    assert torch.allclose(first.embeddings, again.embeddings)


# ---------------------------------------------------------------------------------------------
# 6. a non-finite activation is never ok


def nan_generate(cfg, classifier=None):
    """generate() as it was before the nan status: a diverged run reported as ok."""
    out = generate(cfg, classifier=classifier)
    for r in out:
        r.update(activation=math.nan, prob=math.nan, status="ok")
    return out


def test_atlas_nan_is_not_ok(tmp_path):
    counts = A.run_atlas(atlas_cfg(tmp_path, "classes=0:2"), generate_fn=nan_generate)
    out = tmp_path / "atlas"
    entry = json.loads((out / "entries" / "class_0000.json").read_text())
    assert entry["status"] == "nan"
    assert [r["status"] for r in json.loads((out / "results.json").read_text())["results"]] == ["nan"] * 2
    assert counts["nan"] == 2

    # an entry written by an older version (status ok, activation NaN) is reported as nan too
    e = json.loads((out / "entries" / "class_0001.json").read_text())
    e.update(status="ok", activation=math.nan)
    (out / "entries" / "class_0001.json").write_text(json.dumps(e))
    A.run_atlas(atlas_cfg(tmp_path, "classes=0:2", "sheets_only=true"))
    assert json.loads((out / "results.json").read_text())["results"][1]["status"] == "nan"


def test_evaluate_counts_nan_as_not_ok(tmp_path):
    results = [
        {"target": "class:0", "classes": [0], "image": "images/a.png", "activation": 2.0, "status": "ok"},
        {
            "target": "class:1",
            "classes": [1],
            "image": "images/b.png",
            "activation": math.nan,
            "status": "ok",
        },
        {
            "target": "class:1",
            "classes": [1],
            "image": "images/c.png",
            "activation": math.nan,
            "status": "nan",
        },
        {"target": "class:0", "classes": [0], "image": "images/d.png", "activation": 1.0, "prob": math.inf},
    ]
    write_run(tmp_path, results)
    rows, summary = E.evaluate_run(
        tmp_path,
        evaluators=[build_classifier("tiny")],
        reference_dir=tiny_refs(tmp_path),
        cache_dir=tmp_path / "c",
    )
    assert [r["image"] for r in rows] == ["images/a.png"]
    assert summary[0]["n"] == 1 and summary[0]["not_ok"] == 3


def test_result_status_vocabulary():
    assert runs.result_status({"activation": 1.0}) == "ok"
    assert runs.result_status({"activation": 1.0, "status": "dead"}) == "dead"
    assert runs.result_status({"activation": math.nan, "status": "ok"}) == "nan"
    assert runs.result_status({"activation": 1.0, "prob": None, "status": "ok"}) == "ok"
    assert runs.result_status({"activation": "NaN", "status": "ok"}) == "nan"
    assert not runs.result_ok({"status": "nan", "activation": 1.0})


def test_sweep_counts_nan_as_dead(tmp_path):
    job = tmp_path / "0"
    job.mkdir()
    rows = [
        {"target": "class:1", "activation": 2.0, "prob": 0.5, "rank": 1, "status": "ok"},
        {"target": "class:2", "activation": math.nan, "prob": math.nan, "rank": 1, "status": "ok"},
    ]
    (job / "results.json").write_text(json.dumps({"results": rows}))
    (run,) = S.load_runs(tmp_path)
    assert run["dead"] == 1 and run["activation"] == 2.0 and run["prob"] == 0.5


def test_audit_nan_is_not_ok(tmp_path):
    out = AU.run_audit(audit_cfg(tmp_path), generate_fn=nan_generate)
    data = json.loads(out["json"].read_text())
    assert {c["generated"]["untrained"]["status"] for c in data["classes"]} == {"nan"}
    assert "non-finite" in out["html"].read_text()


# ---------------------------------------------------------------------------------------------
# 7. the classifier goes to the configured device


class Stop(Exception):
    pass


def test_atlas_and_audit_move_the_classifier_to_the_device(tmp_path, monkeypatch):
    seen = []

    def record(cfg, classifier=None):
        seen.append(next(classifier.parameters()).device.type)
        raise Stop

    with pytest.raises(Stop):
        A.run_atlas(atlas_cfg(tmp_path, "classes=0:2", "device=meta"), generate_fn=record)

    def record_refs(clf, *a, **k):
        seen.append(next(clf.parameters()).device.type)
        raise Stop

    monkeypatch.setattr(AU, "reference_embeddings", record_refs)
    with pytest.raises(Stop):
        AU.run_audit(audit_cfg(tmp_path, "device=meta"), generate_fn=never)
    assert seen == ["meta", "meta"]
