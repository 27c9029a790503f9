"""Faults and bad inputs of visualize: NaN is never "ok", runs never overwrite each
other, an unwritable output is found before the work, and bad values are one-line errors
(exit code 2) naming their key."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, compose_cfg

from genviz.app import generate
from genviz.cli import friendly_errors

STEPS = ["generator.steps=3", "target=class:1"]


def _run(overrides, **kw):
    return generate(compose_cfg("visualize", TINY + STEPS + list(overrides)), **kw)


def _error(overrides, capsys, **kw) -> str:
    """Run as visualize.py's main does; the error must be exit code 2 with a one-line message."""
    with pytest.raises(SystemExit) as e:
        with friendly_errors():
            _run(overrides, **kw)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def _cli(args, cwd=ROOT, timeout=300, **kw):
    return subprocess.run(
        [sys.executable, str(ROOT / "visualize.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        **kw,
    )


TINY_CLI = ["classifier=tiny", "generator=tiny", "progress=false", "generator.steps=3", "target=class:1"]


# -- 1. NaN is never "ok" ----------------------------------------------------------------------


def test_status_vocabulary():
    from genviz.runs import NOT_OK, STATUS_DEAD, STATUS_NAN, STATUS_OK, STATUSES, status_of

    assert STATUSES == (STATUS_OK, STATUS_DEAD, STATUS_NAN) == ("ok", "dead", "nan")
    assert NOT_OK == ("dead", "nan")
    assert status_of(float("nan")) == status_of(float("inf"), dead=True) == "nan"
    assert status_of(0.0, dead=True) == "dead" and status_of(1.0) == "ok"


def test_status_follows_the_delivered_image_not_the_engines_transformed_view(monkeypatch):
    """The engine optimizes transformed images; the status is of the final image, measured
    as delivered: an engine 'dead' whose image activates its target is ok, and the reverse."""
    import dataclasses

    import genviz.app as app

    real = app.render

    def flipped(*a, **k):
        res = real(*a, **k)
        return dataclasses.replace(res, dead=[not d for d in res.dead])

    monkeypatch.setattr(app, "render", flipped)
    ok = _run([])[0]  # active image, engine flag flipped to dead
    assert ok["activation"] > 0 and ok["status"] == "ok"
    from genviz.classifiers import build_classifier

    clf = build_classifier("tiny")
    with torch.no_grad():
        clf.model.fc2.bias[1] = -1e4  # never active; the engine's flag flipped to alive
    dead = _run([], classifier=clf)[0]
    assert dead["activation"] == 0 and dead["status"] == "dead"


def test_diverged_optimization_is_status_nan_without_rank_or_probability():
    r = _run(["generator.optimizer.lr=1e30"])[0]
    assert r["status"] == "nan"
    assert r["prob"] is None and r["rank"] is None and r["top5"] == []
    assert r["probs"] == [None] and r["ranks"] == [None]


def test_diverged_run_says_nan_in_the_log_and_results_json(tmp_path):
    p = _cli([*TINY_CLI, "generator.optimizer.lr=1e30", f"hydra.run.dir={tmp_path}"])
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in (p.stdout + p.stderr).splitlines() if "activation=" in ln)
    assert line.rstrip().endswith("nan") and " ok" not in line and "rank=" not in line
    (r,) = json.loads((tmp_path / "results.json").read_text())["results"]
    assert r["status"] == "nan" and r["rank"] is None and r["prob"] is None


# -- 2. unique run directories, atomic results.json ---------------------------------------------


def test_unique_dir_picks_a_fresh_name_and_creates_nothing(tmp_path):
    from genviz.cli import unique_dir

    base = str(tmp_path / "runs" / "2026-01-01_00-00-00_000000")
    assert unique_dir(base) == base and unique_dir(base) == base  # nothing made: the same answer
    assert not (tmp_path / "runs").exists()
    os.makedirs(base)
    assert unique_dir(base) == base + "-1"
    os.makedirs(base + "-1")
    assert unique_dir(base) == base + "-2"


def test_atlas_and_audit_leave_no_empty_visualize_directories(tmp_path):
    """They inherit visualize's config, whose run directory they override."""
    for script, args in [("atlas.py", ["classes=10"]), ("audit.py", ["classes=[]"])]:
        p = subprocess.run(
            [sys.executable, str(ROOT / script), "classifier=tiny", "generator=tiny", *args, f"out_dir={tmp_path / 'o'}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert p.returncode == 2, p.stderr
    assert not (tmp_path / "outputs" / "visualize").exists() or not any(
        (tmp_path / "outputs" / "visualize").iterdir()
    )


def test_default_run_dir_is_sub_second_and_unique():
    from omegaconf import OmegaConf

    cfg = compose_cfg("visualize", return_hydra_config=True)
    run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert "%f" in run_dir and "genviz.unique_dir" in run_dir


def test_two_runs_started_together_keep_their_own_results(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "visualize.py"), *TINY_CLI, f"seed={s}"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for s in (0, 1)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    runs = sorted((tmp_path / "outputs" / "visualize").iterdir())
    assert len(runs) == 2
    seeds = sorted(json.loads((d / "results.json").read_text())["results"][0]["seed"] for d in runs)
    assert seeds == [0, 1]


def test_explicit_shared_run_dir_never_overwrites_results(tmp_path):
    first = _cli([*TINY_CLI, f"hydra.run.dir={tmp_path}"])
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "results.json").read_bytes()
    again = _cli([*TINY_CLI, "seed=5", f"hydra.run.dir={tmp_path}"])
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "results.json" in again.stderr and "overwrite=true" in again.stderr
    assert (tmp_path / "results.json").read_bytes() == before


def test_claim_output_refuses_taken_directories_and_takes_over_stale_locks(tmp_path):
    from genviz.app import LOCK_NAME, OutputError, claim_output

    with claim_output(tmp_path / "a") as out:
        assert (out / LOCK_NAME).is_file()
        with pytest.raises(OutputError, match="in use by another visualize run"):
            with claim_output(tmp_path / "a"):
                pass
    assert not (tmp_path / "a" / LOCK_NAME).exists()  # released
    (tmp_path / "a" / "results.json").write_text("{}")
    with pytest.raises(OutputError, match="overwrite=true"):
        with claim_output(tmp_path / "a"):
            pass
    with claim_output(tmp_path / "a", overwrite=True):
        pass
    # a lock left by a killed run (a process that no longer exists) is taken over
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / LOCK_NAME).write_text(f"{int(dead.stdout)} {socket.gethostname()}")
    with claim_output(tmp_path / "b"):
        pass


def test_results_json_is_written_atomically(tmp_path, monkeypatch):
    import genviz.atomic as A
    from genviz.app import save

    replaced = []
    real = A.os.replace
    monkeypatch.setattr(A.os, "replace", lambda src, dst: (replaced.append(os.fspath(dst)), real(src, dst)))
    res = _run([])
    save(res, tmp_path)
    assert str(tmp_path / "results.json") in replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_atomic_writes_keep_the_old_file_on_failure(tmp_path):
    from genviz.atomic import open_atomic, write_bytes_atomic, write_text_atomic

    path = tmp_path / "r.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with open_atomic(path) as f:
            f.write("partial")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new"


# -- 3. an unwritable output directory is found before the work -----------------------------------


def test_unwritable_out_dir_fails_before_the_optimization(tmp_path):
    (tmp_path / "file").write_text("")
    t0 = time.perf_counter()
    p = _cli(
        [
            *TINY_CLI,
            "generator.steps=10000000",
            f"out_dir={tmp_path}/file/out",
            f"hydra.run.dir={tmp_path}/run",
        ],
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "out_dir=" in p.stderr and "cannot write" in p.stderr
    assert time.perf_counter() - t0 < 120


def test_unwritable_hydra_run_dir_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    p = _cli([*TINY_CLI, f"hydra.run.dir={tmp_path}/file/run"])
    assert p.returncode == 2 and "Traceback" not in p.stderr and "hydra.run.dir=" in p.stderr


def test_read_only_out_dir_fails_before_the_work(tmp_path, monkeypatch):
    """A directory the process may not write in (simulated: root could write into a chmod 555
    directory, so the probe file's creation is refused as the kernel would refuse a user)."""
    import genviz.rundir as rundir
    from genviz.app import OutputError, claim_output

    ro = tmp_path / "ro"
    ro.mkdir()
    real = rundir.tempfile.mkstemp

    def refuse(*a, dir=None, **k):
        if dir is not None and Path(dir) == ro:
            raise PermissionError(13, "Permission denied", str(ro))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(rundir.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="cannot write there .Permission denied"):
        with claim_output(ro):
            pass


# -- 4. one-line errors naming the key -----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["generator.steps=0"], "generator.steps=0"),
        (["generator.steps=-1"], "generator.steps=-1"),
        (["generator.check_every=0"], "generator.check_every=0"),
        (["batch_size=abc"], "batch_size"),
        (["batch_size=-3"], "batch_size=-3"),
        (["threads=-1"], "threads=-1"),
        (["seed=abc"], "seed"),
        (["lam=-5"], "lam=-5"),
        (["lam=nan"], "lam=nan"),
        (["generator.optimizer.lr=nan"], "generator.optimizer.lr"),
        (["device=gpu"], "device=gpu"),
        (["target=[]"], "target=[]"),
        (["target=0*class:1"], "weight 0"),
        (["target=class:1+0*class:2"], "weight 0"),
        (["target=class:-1"], "out of range 0..9"),
        (["target=class:10"], "out of range 0..9"),
        (["target=channel:relu2:-1"], "0 or more"),
    ],
)
def test_bad_values_are_one_line_errors(overrides, needle, capsys):
    assert needle in _error(overrides, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu(capsys):
    err = _error(["device=cuda"], capsys)
    assert "device=cuda" in err and "device=cpu" in err


def test_targets_are_checked_before_the_classifier_loads(monkeypatch):
    """vgg16's class names are known without its 528 MB of weights: a typo fails first."""
    import genviz.app as app
    from genviz.classes import ClassLookupError

    def no_build(*a, **k):
        raise AssertionError("the classifier was built before the targets were checked")

    monkeypatch.setattr(app, "build_classifier", no_build)
    for cfg_over, exc, match in (
        (["classifier=vgg16", "target=class:mosqe"], ClassLookupError, "mosque"),
        (["classifier=vgg16", "target=class:1000"], ValueError, "out of range 0..999"),
        (["classifier=tiny", "target=[class:1,banana]"], ValueError, "expected one of"),
    ):
        cfg = compose_cfg("visualize", ["generator=tiny", "progress=false", "out_dir=unused", *cfg_over])
        with pytest.raises(exc, match=match):
            app.generate(cfg)


def test_weights_with_exponents_parse():
    from genviz.classifiers import build_classifier
    from genviz.targets import parse_target, split_terms

    assert split_terms("1e+3*class:1") == ["1e+3*class:1"]
    assert split_terms("2.5E-1*class:1+1e+2*class:2+class:3") == ["2.5E-1*class:1", "1e+2*class:2", "class:3"]
    obj = parse_target("1e+3*class:1+class:2", build_classifier("tiny"))
    assert sorted(t.weight for t in obj.terms) == [1.0, 1000.0] and obj.classes == [1, 2]
    r = _run(["target=1e+3*class:1"])[0]
    assert r["target"] == "1e+3*class:1" and r["status"] == "ok"


def test_negative_weight_minimizes_and_is_not_dead():
    r = _run(["target=-1*class:1"])[0]
    assert r["status"] == "ok" and r["minimizing"] is True and not r["dead_start"]
    plain = _run(["target=class:1"])[0]
    assert "minimizing" not in plain  # unchanged rows for maximized targets


def test_layer_hint_lists_each_name_once():
    from genviz.classifiers import LayerLookupError, build_classifier

    with pytest.raises(LayerLookupError) as e:
        build_classifier("tiny").resolve_layer("relu9")
    hint = str(e.value).split("Did you mean: ")[1].split("?")[0].split(", ")
    assert hint and len(hint) == len(set(hint))


def test_garbage_weights_path_is_one_line(tmp_path):
    from genviz.classifiers import WeightsUnavailableError, vgg16

    bad = tmp_path / "w.pth"
    bad.write_bytes(os.urandom(4000))
    with pytest.raises(WeightsUnavailableError, match=r"classifier.weights_path=.*not a readable"):
        vgg16(weights_path=str(bad))
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(WeightsUnavailableError, match="do not fit the VGG16"):
        vgg16(weights_path=str(bad))
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        vgg16(weights_path=str(tmp_path / "missing.pth"))


def test_corrupt_cached_vgg16_says_corrupt_and_names_the_file(tmp_path, monkeypatch):
    from genviz.classifiers import WeightsUnavailableError, vgg16

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    cached = tmp_path / "checkpoints" / "vgg16-397923af.pth"
    cached.parent.mkdir()
    cached.write_bytes(b"PK\x03\x04 truncated download" * 10)
    with pytest.raises(WeightsUnavailableError) as e:
        vgg16()
    msg = str(e.value)
    assert "corrupt" in msg and str(cached) in msg and "Delete it" in msg
    assert "no internet" not in msg


def test_target_list_empty_leaves_no_run_directory(tmp_path):
    p = _cli(["classifier=tiny", "generator=tiny", "progress=false", "target=[]"], cwd=tmp_path)
    assert p.returncode == 2 and "target=[]" in p.stderr and "Traceback" not in p.stderr
    assert not list((tmp_path / "outputs" / "visualize").glob("*"))
