"""Finished work is never lost or relabelled: a refused run leaves the old run's .hydra/ as it
was, and Results.save claims its directory as visualize.py does."""

import errno
import os
import subprocess
import sys

import pytest
from conftest import ROOT, TINY, compose_cfg, tiny_cfg

import genviz.app as app
from genviz.api import Results
from genviz.app import generate, run_and_save
from genviz.cli import friendly_errors
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
        [
            sys.executable,
            str(ROOT / "visualize.py"),
            *[a for a in args if a == "-m"],
            *CLI,
            *[a for a in args if a != "-m"],
        ],
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
    assert p.returncode == 2 and p.stderr.strip().startswith("error: hydra.sweep.dir="), p.stderr[-2000:]
    assert "already holds another run's results" in p.stderr and len(p.stderr.strip().splitlines()) == 1
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


def _disk_full(path):
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_full_disk_late_in_the_run_keeps_the_finished_batches(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    cfg = compose_cfg(
        "visualize", [*TINY, "generator.steps=2", "target=[class:1,class:2,class:3]", "batch_size=1"]
    )
    real = app.save_png

    def full_at_the_third(img, path):
        if "class_3" in str(path):
            raise _disk_full(path)
        return real(img, path)

    monkeypatch.setattr(app, "save_png", full_at_the_third)
    with pytest.raises(SystemExit) as e:
        with friendly_errors():
            run_and_save(cfg, run)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot write") and "class_3" in err, err
    assert "No space left on device" in err and "Traceback" not in err
    _, rows = read_results(run / "results.json")
    assert [r.target for r in rows] == ["class:1", "class:2"]
    assert all((run / r.image).is_file() for r in rows)


def test_a_finished_run_saves_each_image_once(tmp_path, monkeypatch):
    cfg = compose_cfg(
        "visualize", [*TINY, "generator.steps=2", "target=[class:1,class:2,class:3]", "batch_size=1"]
    )
    written = []
    real = app.save_png
    monkeypatch.setattr(app, "save_png", lambda img, path: written.append(path) or real(img, path))
    results, out = run_and_save(cfg, tmp_path / "run")
    assert len(written) == 3 and len(results) == 3
    assert (out / "index.html").is_file() and (out / "grid.png").is_file()
    _, rows = read_results(out / "results.json")
    assert [r.target for r in rows] == ["class:1", "class:2", "class:3"]


def test_a_full_disk_in_training_is_one_line(tmp_path, monkeypatch, capsys):
    from genviz.dae import callbacks
    from genviz.dae.train import run as train_run

    def full(self, checkpoint, path, storage_options=None):
        raise _disk_full(path)

    monkeypatch.setattr(callbacks.AtomicCheckpointIO, "save_checkpoint", full)
    with pytest.raises(SystemExit) as e:
        train_run(tiny_cfg(tmp_path, "trainer.max_steps=2"))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and ".ckpt" in err, err


def test_unwritable_sweep_dir_is_one_line_before_any_job(tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    cfg = compose_cfg(
        "visualize", [*TINY, f"hydra.sweep.dir={tmp_path / 'a_file' / 'sweep'}"], return_hydra_config=True
    )
    with pytest.raises(SystemExit) as e:
        ClaimRunDir().on_multirun_start(cfg)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: hydra.sweep.dir=") and "is a file" in err and len(err.splitlines()) == 1
