"""Everything genviz reads back is validated: 16-bit PNGs, FIFOs named like images, hostile
results.json rows and atlas entries, index.tsv, a generator checkpoint's code statistics; and
every value that reaches a page is escaped.  Each gives the right result or one error naming
the file and the field."""

import json
import math
import os
import threading

import numpy as np
import pytest
import torch
from conftest import atlas_cfg
from PIL import Image

from genviz import atlas as A
from genviz import evaluation as E
from genviz.atomic import NotRegularFileError, regular_file
from genviz.classifiers import build_classifier
from genviz.generator import CheckpointError, Decoder, decoder_from_checkpoint
from genviz.images import load_image
from genviz.references import ReferenceFolderError, load_reference
from genviz.report import write_run_page
from genviz.runs import RunFileError, TargetResult, read_entry, read_results, write_entry, write_results


def row(**kw) -> dict:
    values = dict(
        target="class:1", activation=2.5, classes=[1], class_names=["b"], prob=0.5, probs=[0.5],
        rank=1, ranks=[1], top5=[[1, "b", 0.5]], optimized_activation=2.4, dead_start=False,
        status="ok", steps=3, seconds=0.1, seed=0, method="generator_prior", image="images/a.png",
    )  # fmt: skip
    values.update(kw)
    return values


# -- 4. 16-bit PNGs --------------------------------------------------------------------------


def test_16bit_grayscale_png_loads_at_its_level_not_white(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    img = load_image(path)
    assert img.shape == (3, 8, 8)
    assert abs(float(img.mean()) - 0.5) < 0.01  # was 1.0: PIL's convert clips at 255


# -- 6. FIFOs never block a reader --------------------------------------------------------------


def _fifo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _in_thread(fn):
    """Run ``fn`` in a daemon thread; its result or its exception, or a failure if it blocks
    (a FIFO read)."""
    out = {}

    def run():
        try:
            out["v"] = fn()
        except BaseException as e:
            out["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the reader blocked on a FIFO"
    if "e" in out:
        raise out["e"]
    return out["v"]


def test_regular_file_refuses_a_fifo_and_a_directory(tmp_path):
    fifo = _fifo(tmp_path / "000_class_1.png")
    with pytest.raises(NotRegularFileError, match="FIFO"):
        regular_file(fifo)
    with pytest.raises(NotRegularFileError, match="directory"):
        regular_file(tmp_path)
    with pytest.raises(OSError):
        _in_thread(lambda: load_image(fifo))
    (tmp_path / "r.json").write_text("{}")
    assert regular_file(tmp_path / "r.json") == tmp_path / "r.json"


def test_evaluate_names_a_fifo_image_instead_of_hanging(tmp_path):
    run = tmp_path / "run"
    _fifo(run / "images" / "000_class_1.png")
    write_results(run / "results.json", [row(image="images/000_class_1.png")], {"classifier": "tiny"})

    def go():
        try:
            E.evaluate_run(run, evaluators=[build_classifier("tiny")], reference_dir=tmp_path)
        except FileNotFoundError as e:
            return str(e)

    assert "000_class_1.png" in _in_thread(go)


def test_fifo_results_json_and_entry_are_refused(tmp_path):
    res = _fifo(tmp_path / "results.json")
    with pytest.raises(RunFileError, match="results.json"):
        _in_thread(lambda: read_results(res))
    assert _in_thread(lambda: read_entry(_fifo(tmp_path / "entries" / "class_0001.json"))) is None


def test_atlas_with_a_fifo_image_renders_it_again(tmp_path):
    cfg = atlas_cfg(tmp_path, "classes=0:2")
    out = tmp_path / "atlas"
    A.run_atlas(cfg)
    os.unlink(out / "images" / "class_0001.png")
    _fifo(out / "images" / "class_0001.png")
    counts = _in_thread(lambda: A.run_atlas(cfg))
    assert counts["rendered"] == 1 and (out / "images" / "class_0001.png").is_file()


# -- 5. every value that reaches a page is escaped ---------------------------------------------


def test_page_escapes_every_field(tmp_path):
    script = "<script>alert(1)</script>"
    rows = [
        row(rank=script, target=script, status=script, top5=[[1, script, script]], activation=script,
            image=f'a.png" onerror="{script}', gif=script),
        row(prob=script, target=123, top5=[[1, "x"]], history=[1.0, None, 2.0]),
    ]  # fmt: skip
    page = write_run_page(rows, tmp_path).read_text()
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 6
    assert 'onerror="' not in page


def test_atlas_entry_with_markup_in_rank_never_reaches_the_page(tmp_path):
    A.run_atlas(atlas_cfg(tmp_path, "classes=0:1"))
    entry = tmp_path / "atlas" / "entries" / "class_0000.json"
    data = json.loads(entry.read_text())
    data["rank"] = "<script>alert(1)</script>"
    entry.write_text(json.dumps(data))
    A.run_atlas(atlas_cfg(tmp_path, "classes=0:1", "sheets_only=true"))
    assert "<script>" not in (tmp_path / "atlas" / "index.html").read_text()


# -- 9. read-back files: one validating reader each ----------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("classes", [-1]), ("classes", [1.7]), ("classes", [[1, 2]]), ("classes", ["abc"]),
     ("rank", "<b>"), ("rank", 0), ("prob", "abc"), ("status", "great"), ("top5", [[1, 2]]),
     ("image", "../../etc/passwd"), ("image", "/etc/passwd"), ("target", 5), ("steps", -1),
     ("history", "x"), ("minimizing", "yes")],
)  # fmt: skip
def test_results_json_with_a_bad_field_names_file_and_field(tmp_path, field, value):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": [row(), row(**{field: value})]}))
    with pytest.raises(RunFileError) as e:
        read_results(path)
    msg = str(e.value)
    assert str(path) in msg and f"results[1].{field}" in msg and "\n" not in msg


def test_evaluate_refuses_a_class_out_of_the_evaluators_range(tmp_path):
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 60, 40)).save(run / "images" / "a.png")
    write_results(run / "results.json", [row(classes=[5000])], {"classifier": "tiny"})
    with pytest.raises(RunFileError, match=r"results\[0\]\.classes.*5000.*out of range 0\.\.9"):
        E.evaluate_run(run, evaluators=[build_classifier("tiny")], reference_dir=tmp_path)


def test_nan_is_written_as_null_with_status_nan(tmp_path):
    path = write_results(
        tmp_path / "results.json",
        [row(activation=math.nan, prob=math.inf, history=[1.0, math.nan])],
        {"lr": math.nan},
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
    r = data["results"][0]
    assert r["activation"] is None and r["prob"] is None and r["status"] == "nan"
    assert r["history"] == [1.0, None] and data["config"] == {"lr": None}
    _, (back,) = read_results(path)
    assert back.status == "nan"
    entry = write_entry(tmp_path / "e.json", TargetResult(target="class:1", activation=math.nan))
    assert "NaN" not in entry.read_text() and read_entry(entry).status == "nan"


def test_invalid_atlas_entry_is_not_done(tmp_path, caplog):
    path = tmp_path / "class_0001.json"
    path.write_text(json.dumps(row(classes=[[1, 2]])))
    assert read_entry(path) is None
    assert "class_0001.json" in caplog.text and "classes" in caplog.text


def _index_folder(tmp_path, text):
    folder = tmp_path / "refs"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    (folder / "index.tsv").write_text(text)
    return folder


@pytest.mark.parametrize(
    "text, words",
    [
        ("index\twnid\tfile\n-1\tn0\ta.png\n", ["line 2", "index '-1'", "0..9"]),
        ("index\twnid\tfile\n5000\tn0\ta.png\n", ["line 2", "index '5000'"]),
        ("index\twnid\tfile\nabc\tn0\ta.png\n", ["line 2", "index 'abc'"]),
        ("index\twnid\n1\tn0\n", ["no 'file' column"]),
        ("index\twnid\tfile\n1\tn0\t../../x.png\n", ["line 2", "file '../../x.png'"]),
    ],
)
def test_index_tsv_bad_rows_name_file_line_and_field(tmp_path, text, words):
    folder = _index_folder(tmp_path, text)
    clf = build_classifier("tiny")
    with pytest.raises(ReferenceFolderError) as e:
        load_reference(folder, clf.classes)
    msg = str(e.value)
    assert "index.tsv" in msg and "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_index_tsv_good_rows_read(tmp_path):
    folder = _index_folder(tmp_path, "index\twnid\tfile\n3\tn0\ta.png\n")
    ref = load_reference(folder, build_classifier("tiny").classes)
    assert ref.classes == [3] and ref.files == [folder / "a.png"]


def _decoder_ckpt(tmp_path, **stats):
    kwargs = dict(code_channels=4, code_size=2, channels=[8, 8, 8], layout="same")
    dec = Decoder(**kwargs)
    sd = {f"decoder.{k}": v for k, v in dec.state_dict().items()}
    sd.update(stats)
    path = tmp_path / "dec.ckpt"
    torch.save({"hyper_parameters": {"decoder": kwargs}, "state_dict": sd}, path)
    return str(path), dec.code_dim


@pytest.mark.parametrize(
    "stats, words",
    [
        ({"code_count": torch.tensor(5)}, ["code_mean", "none"]),
        ({"code_count": torch.tensor(5), "code_mean": torch.zeros(3), "code_std": torch.ones(3)}, ["code_mean", "(3,)"]),
        ({"code_count": torch.tensor(5), "code_mean": torch.zeros(16), "code_std": torch.ones(2, 2)}, ["code_std"]),
        ({"code_count": torch.tensor(5), "code_mean": torch.zeros(16), "code_std": -torch.ones(16)}, ["code_std", "negative"]),
        ({"code_count": torch.ones(3), "code_mean": torch.zeros(16), "code_std": torch.ones(16)}, ["code_count"]),
    ],
)  # fmt: skip
def test_checkpoint_code_statistics_are_checked(tmp_path, stats, words):
    path, n = _decoder_ckpt(tmp_path, **stats)
    assert n == 16
    with pytest.raises(CheckpointError) as e:
        decoder_from_checkpoint(path)
    for w in [path, *words]:
        assert w in str(e.value), (w, str(e.value))


def test_checkpoint_code_statistics_good_or_absent(tmp_path):
    path, n = _decoder_ckpt(tmp_path)
    assert decoder_from_checkpoint(path).code_stats is None
    path, n = _decoder_ckpt(
        tmp_path, code_count=torch.tensor(5), code_mean=torch.zeros(4, 2, 2), code_std=torch.ones(4, 2, 2)
    )
    stats = decoder_from_checkpoint(path).code_stats
    assert stats["mean"].shape == (n,) and float(stats["std"].sum()) == n


@pytest.mark.parametrize("kind", ["fifo", "garbage", "mapping"])
def test_sweep_lists_a_run_whose_overrides_file_is_hostile(tmp_path, kind, capsys):
    from genviz.sweep import load_runs

    job = tmp_path / "sweep" / "0"
    write_results(job / "results.json", [row()])
    overrides = job / ".hydra" / "overrides.yaml"
    if kind == "fifo":
        _fifo(overrides)
    else:
        overrides.parent.mkdir(parents=True)
        overrides.write_text("lam: [0.5" if kind == "garbage" else "lam: 0.5\n")
    (run,) = _in_thread(lambda: load_runs(tmp_path / "sweep"))
    assert run["overrides"] == {} and run["n"] == 1
    assert "overrides.yaml" in capsys.readouterr().err


def test_evaluate_read_only_run_dir_is_one_error_before_scoring(tmp_path, monkeypatch):
    import tempfile

    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(run / "images" / "a.png")
    write_results(run / "results.json", [row()], {"classifier": "tiny"})

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(run))

    def never(*a, **k):
        raise AssertionError("scoring started before the run directory was checked")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as root, chmod does not stop writes
    monkeypatch.setattr(E, "build_classifier", never)
    with pytest.raises(ValueError, match=r"run_dir=.*Permission denied") as e:
        E.evaluate_run(run, evaluators=["tiny"], reference_dir=tmp_path)
    one_line = str(e.value)
    assert "\n" not in one_line
