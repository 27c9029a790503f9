"""benchmarks/quality.py: the chunks a long run is cut into
(``--classes K --offset O``), the errors of a bad chunk (before any model loads), and the
visualize config each method runs with."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("class_set", ["default", "odd"])
def test_chunks_cover_the_list_once_in_order(quality, class_set):
    names = quality.CLASS_SETS[class_set]
    chunks = [quality.select_classes(class_set, 6, offset) for offset in range(0, len(names), 6)]
    assert [c for chunk in chunks for c in chunk] == names
    assert quality.select_classes(class_set, 6, 6) == names[6:12]
    assert quality.select_classes(class_set, 1, len(names) - 1) == names[-1:]


@pytest.mark.parametrize(
    "n, offset, needle",
    [(0, 0, "--classes must be in 1..24"), (25, 0, "--classes must be in 1..24"),
     (6, -1, "--offset must be in 0..23"), (6, 24, "--offset must be in 0..23"),
     (6, 20, "use --classes 4 or less")],
)  # fmt: skip
def test_a_bad_chunk_is_one_line_naming_the_fix(quality, capsys, n, offset, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        quality.select_classes("odd", n, offset)
    with pytest.raises(SystemExit) as exit_info:  # the command line: argparse's usage error
        quality.main(["--class-set", "odd", "--classes", str(n), "--offset", str(offset)])
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("progress", [True, False])
def test_each_method_runs_the_chosen_classes_with_or_without_a_progress_bar(quality, progress):
    cfg = quality.compose_run("tiny", [1, 7], ["method=fourier"], seed=3, batch_size=2, progress=progress)
    assert cfg.progress is progress
    assert list(cfg.target) == ["class:1", "class:7"]
    assert (cfg.seed, cfg.batch_size, cfg.method.name) == (3, 2, "fourier")
