"""Finished work is never lost or relabelled: a refused run leaves the old run's .hydra/ as it
was, and Results.save claims its directory as visualize.py does."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, TINY, compose_cfg

from genviz.api import Results
from genviz.app import generate
from genviz.rundir import ClaimRunDir, OutputError
from genviz.runs import read_results

CLI = ["classifier=tiny", "generator=tiny", "progress=false", "generator.steps=2", "target=class:1"]


def _old_run(run):
    """A finished run's record: its results.json and Hydra's .hydra/overrides.yaml."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- lam=0.0\n")
    (run / "results.json").write_text('{"results": [{"target": "class:1", "activation": 1.0}]}')


def _cli(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "visualize.py"), *CLI, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_refused_run_leaves_the_old_runs_hydra_record(tmp_path):
    run = tmp_path / "run"
    _old_run(run)
    p = _cli(f"hydra.run.dir={run}", "lam=0.5")
    assert p.returncode == 2 and p.stderr.strip().startswith("error: hydra.run.dir="), p.stderr[-2000:]
    assert "already holds another run's results" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert (run / ".hydra" / "overrides.yaml").read_text() == "- lam=0.0\n"
    assert not (run / ".hydra" / "config.yaml").exists()


def test_refused_sweep_leaves_the_old_jobs_hydra_record(tmp_path):
    sweep = tmp_path / "sweep"
    _old_run(sweep / "0")
    p = _cli("-m", "lam=0.5,0.9", f"hydra.sweep.dir={sweep}")
    assert p.returncode == 2 and "hydra.sweep.dir=" in p.stderr, p.stderr[-2000:]
    assert (sweep / "0" / ".hydra" / "overrides.yaml").read_text() == "- lam=0.0\n"
    assert not (sweep / "1").exists()


def test_claim_run_dir_lets_overwrite_and_fresh_dirs_through(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "a").mkdir(parents=True)
    cfg = compose_cfg(
        "visualize",
        [*TINY, f"hydra.sweep.dir={sweep}", f"hydra.run.dir={tmp_path / 'r'}"],
        return_hydra_config=True,
    )
    ClaimRunDir().on_multirun_start(cfg)  # no results.json in it: fine
    ClaimRunDir().on_run_start(cfg)
    _old_run(sweep / "0")
    with pytest.raises(SystemExit):
        ClaimRunDir().on_multirun_start(cfg)
    cfg.overwrite = True
    ClaimRunDir().on_multirun_start(cfg)


def test_results_save_never_overwrites_another_run(tmp_path):
    cfg = compose_cfg("visualize", [*TINY, "generator.steps=2", "target=[class:1,class:2,class:3]"])
    three = Results(generate(cfg), cfg)
    three.save(tmp_path / "run")
    cfg1 = compose_cfg("visualize", [*TINY, "generator.steps=2", "target=class:4"])
    one = Results(generate(cfg1), cfg1)
    with pytest.raises(OutputError, match="already holds another run's results"):
        one.save(tmp_path / "run")
    _, rows = read_results(tmp_path / "run" / "results.json")
    assert [r.target for r in rows] == ["class:1", "class:2", "class:3"]
    one.save(tmp_path / "run", overwrite=True)
    _, rows = read_results(tmp_path / "run" / "results.json")
    assert [r.target for r in rows] == ["class:4"]
    assert not (tmp_path / "run" / ".genviz-visualize.lock").exists()
