"""Numbers at the edges and typos: each is one line naming its key (exit code 2), checked
before it is expanded or reaches torch."""

import pytest
from conftest import TINY, compose_cfg, tiny_cfg

from genviz.app import generate, validate_config
from genviz.cli import friendly_errors
from genviz.dae.data import DataConfigError
from genviz.dae.train import run, train
from genviz.options import ConfigError
from genviz.targets import TargetError, check_targets


def _error(overrides, capsys) -> str:
    """As visualize.py's main runs it: exit code 2 and one line."""
    with pytest.raises(SystemExit) as e:
        with friendly_errors():
            generate(compose_cfg("visualize", TINY + ["generator.steps=2", *overrides]))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "override, words",
    [
        ("lam=1e39", ["lam=1e+39", "at most"]),
        ("seed=99999999999999999999999", ["seed=", "at most"]),
        ("seed=-99999999999999999999999", ["seed=", "at least"]),
        ("generator.optimizer.lr=1e39", ["generator.optimizer.lr", "at most"]),
        ("threads=99999999999", ["threads=", "at most"]),
    ],
)
def test_numbers_past_their_range_name_the_key(override, words, capsys):
    err = _error(["target=class:1", override], capsys)
    for w in words:
        assert w in err, (w, err)


@pytest.mark.parametrize("spec", ["0-99999999999", "0-99999", "5-3", "0,70000"])
def test_channel_ranges_are_checked_before_they_are_expanded(spec):
    with pytest.raises(TargetError, match="channel"):
        check_targets([f"channels:relu1:{spec}"])


def test_channel_range_in_a_run_is_one_line(capsys):
    err = _error(["target=channels:relu1:0-99999999999"], capsys)
    assert "channels:relu1:0-99999999999" in err and "out of range" in err


def test_a_long_valid_range_still_parses():
    check_targets(["channels:relu1:0-4095"])


def test_largest_seed_and_float32_lam_are_accepted():
    validate_config(compose_cfg("visualize", TINY + ["target=class:1", f"seed={2**64 - 1}", "lam=3e38"]))
    with pytest.raises(ConfigError, match="seed"):
        validate_config(compose_cfg("visualize", TINY + ["target=class:1", f"seed={2**64}"]))


@pytest.mark.parametrize(
    "override, key",
    [("dae.lr=-1", "dae.lr"), ("dae.lr=0", "dae.lr"), ("dae.warmup_steps=-5", "dae.warmup_steps"),
     ("dae.lr=abc", "dae.lr"), ("dae.gamma=1e40", "dae.gamma")],
)  # fmt: skip
def test_dae_numbers_are_checked_before_the_model(tmp_path, override, key):
    with pytest.raises(DataConfigError) as e:
        train(tiny_cfg(tmp_path, override))
    assert str(e.value).startswith(f"{key}=") and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("+trainer.max_stepz=5", "trainer.max_stepz"),
        (
            "+callbacks.model_checkpoint.every_n_train_stepz=3",
            "callbacks.model_checkpoint.every_n_train_stepz",
        ),
        ("callbacks.recon_grid._target_=genviz.nothing.Here", "callbacks.recon_grid"),
    ],
)
def test_trainer_and_callback_typos_are_one_line_exit_2(tmp_path, override, key, capsys):
    with pytest.raises(SystemExit) as e:
        run(tiny_cfg(tmp_path, override))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err, err


# -- resume semantics (item 7) -------------------------------------------------------------------


def test_resume_with_changed_dae_values_is_refused_naming_the_keys(tmp_path, capsys):
    train(tiny_cfg(tmp_path, "trainer.max_steps=2"))
    with pytest.raises(SystemExit) as e:
        run(tiny_cfg(tmp_path, "trainer.max_steps=4", "ckpt_path=last", "dae.lr=0.05", "dae.gamma=0.9"))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dae.lr=0.05" in err and "dae.gamma=0.9" in err, err
    assert "init_from" in err
    train(tiny_cfg(tmp_path, "trainer.max_steps=4", "ckpt_path=last"))  # unchanged: resumes


def test_resuming_a_copied_run_dir_updates_last_ckpt(tmp_path):
    import shutil

    import torch

    train(tiny_cfg(tmp_path / "a", "trainer.max_steps=2"))
    shutil.copytree(tmp_path / "a" / "run", tmp_path / "b" / "run")
    train(tiny_cfg(tmp_path / "b", "trainer.max_steps=4", "ckpt_path=last"))
    ckpts = tmp_path / "b" / "run" / "checkpoints"
    assert not list(ckpts.glob("last-v*.ckpt")), sorted(p.name for p in ckpts.iterdir())
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 4
