"""The console scripts of pyproject.toml ([project.scripts]): each is the checkout's script run
from any directory, with the same config, job name and outputs as ``python <script>.py``."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys

import pytest
import tomllib
from conftest import ROOT, TINY_DAE, make_images

from genviz import scripts


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Another working directory; sys.path, sys.argv and the logging setup restored afterwards
    (Hydra configures logging for its job)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _command(name: str, *args: str) -> int | str | None:
    """Run console script ``name`` with ``args`` as pip's wrapper does (``sys.exit(func())``); its
    exit code."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"][name]
    module, func = target.split(":")
    sys.argv = [name, *args]
    try:
        sys.exit(getattr(importlib.import_module(module), func)())
    except SystemExit as e:
        return e.code


def test_every_script_names_a_function_and_its_script_exists():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(table) == {
        f"genviz-{n}" for n in ("visualize", "train-dae", "atlas", "audit", "evaluate", "sweep")
    }
    for name, target in table.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), name
        if module == "genviz.scripts":
            assert (ROOT / f"{name.removeprefix('genviz-').replace('-', '_')}.py").is_file(), name


@pytest.mark.parametrize(
    "name,config,needle",
    [
        ("genviz-train-dae", "train_dae", "_target_: genviz.dae.DAE"),
        ("genviz-visualize", "visualize", "generator:"),
        ("genviz-atlas", "atlas", "sheet:"),
        ("genviz-audit", "audit", "classes:"),
        ("genviz-evaluate", "evaluate", "evaluators:"),
    ],
)
def test_hydra_scripts_find_the_configs_from_another_directory(elsewhere, capsys, name, config, needle):
    assert _command(name, "--cfg", "job") in (None, 0)
    out = capsys.readouterr().out
    assert needle in out, out[:2000]
    assert not any(elsewhere.iterdir())  # --cfg writes nothing


def test_train_dae_script_prints_the_same_config_as_the_file(elsewhere, capsys):
    args = ["--cfg", "job", "dae=cpu_small", "data=val1k"]
    file = subprocess.run(
        [sys.executable, "train_dae.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert file.returncode == 0, file.stderr[-2000:]
    assert _command("genviz-train-dae", *args) in (None, 0)
    assert capsys.readouterr().out == file.stdout


def test_train_dae_script_trains_like_the_file(elsewhere, tmp_path):
    images = make_images(tmp_path / "images")
    run = tmp_path / "run"
    over = [*TINY_DAE, f"data.root={images}", "trainer.max_steps=2", "logger=none", f"hydra.run.dir={run}"]
    assert _command("genviz-train-dae", *over) in (None, 0)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert (run / "train_dae.log").is_file()  # Hydra's job name: the script's, as with python train_dae.py
    assert _command("genviz-train-dae", *over, "data.batch_size=0") == 2  # the script's one-line errors


def test_visualize_script_writes_its_run_where_the_file_would(elsewhere, tmp_path):
    out = tmp_path / "vis"
    args = [
        "classifier=tiny",
        "generator=tiny",
        "generator.steps=2",
        "target=class:1",
        f"hydra.run.dir={out}",
    ]
    assert _command("genviz-visualize", *args) in (None, 0)
    res = json.loads((out / "results.json").read_text())
    assert res["results"][0]["target"] == "class:1" and (out / "visualize.log").is_file()
    assert not any(elsewhere.iterdir())


def test_sweep_script_is_the_module_main(elsewhere, capsys):
    assert _command("genviz-sweep", str(elsewhere / "missing")) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_checkout_without_its_scripts_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(scripts, "ROOT", tmp_path)
    with pytest.raises(SystemExit) as e:
        scripts.visualize()
    assert e.value.code == 2 and "pip install -e ." in capsys.readouterr().err
