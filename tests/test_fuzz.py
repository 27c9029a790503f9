"""Property-based tests (hypothesis): target strings, numeric overrides and every read-back file
kind, generated at random, each give the right result or one error line naming the key or the
file -- never another exception (a traceback), a hang or a silently wrong value."""

import atexit
import json
import math
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from conftest import TINY, compose_cfg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from genviz.app import validate_config
from genviz.classes import ClassLookupError
from genviz.classifiers import LayerLookupError, build_classifier
from genviz.generator import CheckpointError, code_stats
from genviz.options import ConfigError
from genviz.references import ReferenceFolderError, read_index_tsv
from genviz.report import write_run_page
from genviz.runs import ROW_FIELDS, RunFileError, read_entry, read_results, write_results
from genviz.targets import check_targets, parse_targets

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
WORK = Path(tempfile.mkdtemp(prefix="genviz-fuzz-"))  # hypothesis runs many examples per test:
atexit.register(shutil.rmtree, WORK, True)  # one scratch folder, not pytest's tmp_path per test


@lru_cache(maxsize=1)
def tiny():
    return build_classifier("tiny")


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


# -- target strings --------------------------------------------------------------------------

PIECES = ["class:", "channel:", "channels:", "neuron:", "layer:", "relu1", "relu2", "fc2", "head",
          "goldfish", ":", ",", "-", "+", "*", "0.5", "1e3", "-1", "0", "1", "9", "10", "99999999999",
          "nan", "inf", " ", "e", ".", "__", "ü", "<script>"]  # fmt: skip
TARGETS = st.lists(st.sampled_from(PIECES), min_size=0, max_size=8).map("".join) | st.text(max_size=30)


@FUZZ
@given(TARGETS)
def test_any_target_string_parses_or_is_one_error_line(text):
    try:
        check_targets([text], tiny().classes)  # before the classifier is built: syntax, classes
    except (ValueError, ClassLookupError) as e:
        one_line(e)
    try:
        (obj,) = parse_targets([text], tiny())
    except LayerLookupError as e:  # its documented form: one line, then the valid layer names
        assert str(e).startswith("classifier 'tiny' has no layer") and "Traceback" not in str(e)
        return
    except (ValueError, ClassLookupError) as e:
        one_line(e)
        return
    assert obj.terms and all(math.isfinite(t.weight) and t.weight != 0 for t in obj.terms)


@FUZZ
@given(st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from(["class:{}", "channel:relu1:{}"]))
def test_index_targets_are_right_or_refused(i, form):
    text = form.format(i)
    n = len(tiny().classes) if form.startswith("class") else 1 << 16  # the layer's own count: at run time
    try:
        (obj,) = parse_targets([text], tiny())
    except ValueError as e:
        assert not 0 <= i < n and str(i) in one_line(e)
        return
    assert 0 <= i < n and obj.terms[0].index[1] == i


@FUZZ
@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_channel_ranges_are_right_or_refused_before_expanding(a, b):
    try:
        (obj,) = parse_targets([f"channels:relu1:{a}-{b}"], tiny())
    except ValueError as e:
        assert b < a or b >= 1 << 16
        one_line(e)
        return
    assert [t.index[1] for t in obj.terms] == list(range(a, b + 1))


# -- numeric overrides -----------------------------------------------------------------------

NUMBERS = (
    st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["abc", "", "1e39", "-0", "3.5", "1_000", None, True])
)
KEYS = ["lam", "seed", "batch_size", "threads", "frames_every", "generator.steps", "generator.check_every",
        "generator.patience", "generator.optimizer.lr", "generator.min_delta"]  # fmt: skip


@lru_cache(maxsize=1)
def base_cfg():
    return compose_cfg("visualize", [*TINY, "target=class:1"])


@FUZZ
@given(st.sampled_from(KEYS), NUMBERS)
def test_numeric_overrides_are_in_range_or_one_error_naming_the_key(key, value):
    cfg = base_cfg().copy()
    OmegaConf.update(cfg, key, value, force_add=True)
    try:
        validate_config(cfg, targets=False)
    except ConfigError as e:
        assert one_line(e).startswith(key), (key, str(e))
        return
    v = OmegaConf.select(cfg, key)
    if v is None:  # null: that key's default behaviour (no plateau stop, all targets in one batch...)
        assert key not in ("lam", "seed", "generator.optimizer.lr")
    elif key == "seed":
        torch.manual_seed(int(v))
    elif key in ("lam", "generator.optimizer.lr", "generator.min_delta"):
        assert math.isfinite(float(v)) and float(v) >= 0 and torch.isfinite(torch.full((1,), float(v)))
    elif v is not None:
        assert int(v) >= 0


# -- read-back files ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
ROW = st.dictionaries(st.sampled_from(sorted(ROW_FIELDS)) | st.text(max_size=6), JSON, max_size=8)


def _valid_row(row) -> bool:
    return all(ROW_FIELDS[k][0](v) for k, v in row.items() if k in ROW_FIELDS)


@FUZZ
@given(st.lists(ROW, max_size=4) | JSON)
def test_results_json_reads_right_or_one_error_naming_the_file(results):
    path = WORK / "results.json"
    path.write_text(json.dumps({"results": results, "config": {"seed": 0}}))
    try:
        _, rows = read_results(path)
    except RunFileError as e:
        assert str(path) in one_line(e)
        assert not (isinstance(results, list) and all(isinstance(r, dict) and _valid_row(r) for r in results))
        return
    assert isinstance(results, list) and all(_valid_row(r.to_dict()) for r in rows)
    # what was read writes back as strict JSON, reads again the same, and pages escape it
    write_results(WORK / "again.json", rows, {"seed": 0})
    json.loads(
        (WORK / "again.json").read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))
    )
    _, again = read_results(WORK / "again.json")
    assert len(again) == len(rows)
    page = write_run_page([r.to_dict() for r in rows], WORK).read_text()
    assert "<script" not in page.replace("<script>alert", "")  # the page has no script of its own


@FUZZ
@given(ROW | JSON)
def test_atlas_entry_reads_or_is_skipped(entry):
    path = WORK / "entry.json"
    path.write_text(json.dumps(entry))
    e = read_entry(path)
    assert (e is None) != (isinstance(entry, dict) and _valid_row(entry))


TSV_CELL = st.sampled_from(
    ["0", "9", "10", "-1", "5000", "abc", "", "a.png", "../x.png", "/abs.png", "d/b.jpg"]
)


@FUZZ
@given(
    st.lists(st.sampled_from(["index", "wnid", "file", "other"]), min_size=0, max_size=4),
    st.lists(st.lists(TSV_CELL, min_size=0, max_size=4), max_size=5),
)
def test_index_tsv_reads_right_or_one_error_naming_the_file(header, rows):
    path = WORK / "index.tsv"
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    try:
        got = read_index_tsv(path, 10)
    except ReferenceFolderError as e:
        assert str(path) in one_line(e)
        return
    assert "index" in header and "file" in header
    for file, index in got:
        assert 0 <= index < 10 and file and not Path(file).is_absolute() and ".." not in Path(file).parts


SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple)
TENSOR = st.one_of(
    st.none(),
    st.builds(
        lambda s, fill: torch.full(s, fill, dtype=torch.float64),
        SHAPES,
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    st.builds(lambda s: torch.zeros(s, dtype=torch.long), SHAPES),
    st.integers(-3, 3),
)


@FUZZ
@given(TENSOR, TENSOR, TENSOR)
def test_code_statistics_are_right_or_one_error_naming_the_file(mean, std, count):
    sd = {k: v for k, v in (("code_mean", mean), ("code_std", std), ("code_count", count)) if v is not None}
    try:
        stats = code_stats(sd, 4, "ckpt.pt")
    except CheckpointError as e:
        assert "ckpt.pt" in one_line(e)
        return
    if stats is not None:
        assert stats["mean"].shape == stats["std"].shape == (4,)
        assert torch.isfinite(stats["mean"]).all() and (stats["std"] >= 0).all()
