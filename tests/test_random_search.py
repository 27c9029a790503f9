"""Random search (Bergstra & Bengio) as a Hydra sweeper: draws, reproducibility, and an end-to-end sweep."""

import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from genviz.sweep import load_runs, main, rank_runs, table
from hydra_plugins.genviz_random_sweeper.random_sweeper import draw_trials


def _draws(args, trials=200, seed=0):
    overrides = OverridesParser.create().parse_overrides(args)
    return [dict(s.split("=", 1) for s in job) for job in draw_trials(overrides, trials, seed)]


def test_draws_respect_intervals_log_scale_and_choices():
    jobs = _draws(["a=interval(2,4)", "b=tag(log,interval(0.001,10))", "c=3,5,7", "d=range(0,3)", "e=x"])
    a = [float(j["a"]) for j in jobs]
    b = [float(j["b"]) for j in jobs]
    assert all(2 <= v <= 4 for v in a) and all(0.001 <= v <= 10 for v in b)
    # log-uniform: about half the draws below the geometric middle (0.1), not ~1% as uniform would give
    below = sum(v < 0.1 for v in b) / len(b)
    assert 0.35 < below < 0.65
    assert {j["c"] for j in jobs} == {"3", "5", "7"} and {j["d"] for j in jobs} == {"0", "1", "2"}
    assert {j["e"] for j in jobs} == {"x"}


def test_draws_are_reproducible_and_the_seed_matters():
    args = ["lr=tag(log,interval(0.01,1))", "k=1,2,3,4"]
    assert _draws(args, 10, seed=1) == _draws(args, 10, seed=1)
    assert _draws(args, 10, seed=1) != _draws(args, 10, seed=2)


@pytest.mark.parametrize(
    "args,message",
    [(["a=interval(3,1)"], "start < end"), (["a=tag(log,interval(0,1))"], "start > 0")],
)
def test_bad_search_spaces_are_named(args, message):
    with pytest.raises(HydraException, match=message):
        _draws(args, 2)


def test_sweep_end_to_end_and_ranking(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    p = subprocess.run(
        [
            sys.executable,
            "visualize.py",
            "-m",
            "hydra/sweeper=random",
            "hydra.sweeper.trials=3",
            "hydra.sweeper.seed=4",
            f"hydra.sweep.dir={sweep}",
            "classifier=tiny",
            "method=pixel",
            "method.steps=4",
            "method.size=16",
            "progress=false",
            "target=[class:1,class:2]",
            "method.lr=tag(log,interval(0.01,1))",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    rows = (sweep / "trials.tsv").read_text().splitlines()
    assert rows[0] == "trial\tmethod.lr" and len(rows) == 4
    lrs = [float(r.split("\t")[1]) for r in rows[1:]]
    for k, lr in enumerate(lrs):  # each job ran with its own draw and recorded it
        cfg = json.loads((sweep / str(k) / "results.json").read_text())["config"]
        assert math.isclose(cfg["method"]["lr"], lr) and 0.01 <= lr <= 1
    runs = rank_runs(load_runs(sweep), by="prob")
    assert len(runs) == 3 and all(r["n"] == 2 for r in runs)
    assert [r["prob"] for r in runs] == sorted((r["prob"] for r in runs), reverse=True)
    assert "method.lr" in table(runs).splitlines()[0]
    assert main([str(sweep), "--by", "rank"]) == 0 and "| run |" in capsys.readouterr().out
    assert main([str(tmp_path / "nothing")]) == 2
