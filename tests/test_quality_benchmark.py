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


def test_seed_means_read_what_quality_writes(quality, tmp_path):
    """benchmarks/seed_means.py averages the tables quality.write_md writes, seed by seed, and a
    FILE:old=new argument renames a method of one file."""
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("seed_means", ROOT / "benchmarks" / "seed_means.py")
    seed_means = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_means)

    def row(method, evaluator, top1, kid):
        return {"method": method, "evaluator": evaluator, "steps": 10, "n": 2, "top1": top1, "top5": 1.0,
                "prob": 0.5, "plausibility_median": 4 * top1, "plausibility_mean": 5.0,
                "plausibility_top1": 0.5, "kid_x1000": kid, "kid_se_x1000": 1.0, "colourfulness": 40.0,
                "contrast": 0.2, "own_prob": 0.9, "dead": 0, "s_per_image": 1.0,
                "per_class": [(1, 2.0), (3, 4.0)]}  # fmt: skip

    files = []
    for seed, (a, b) in enumerate([(0.5, 0.25), (1.0, 0.75)]):
        args = SimpleNamespace(classifier="tiny", evaluator="e1,e2", seed=seed, batch_size=2, steps=None,
                               offset=0)  # fmt: skip
        path = tmp_path / f"seed{seed}.md"
        rows = [row("m", "e1", a, 10.0 * (seed + 1)), row("m", "e2", b, 30.0)]
        quality.write_md(path, rows, [], args, ["goldfish", "lemon"], "cmd")
        files.append(str(path))
    assert seed_means.main([files[0], files[1] + ":m=old"]) == 0
    summaries = seed_means.seed_means(
        [seed_means.read_table(tmp_path / "seed0.md"), seed_means.read_table(tmp_path / "seed1.md")]
    )
    e1 = next(s for s in summaries if s["evaluator"] == "e1")
    assert e1["seeds"] == [0, 1] and e1["top1"] == pytest.approx(0.75) and e1["kid"] == pytest.approx(15.0)
    assert e1["plaus"] == pytest.approx(3.0)  # the median of the seeds' medians (2 and 4)
    renamed = seed_means.seed_means([seed_means.read_table(tmp_path / "seed1.md", {"m": "old"})])
    assert {s["method"] for s in renamed} == {"old"}
