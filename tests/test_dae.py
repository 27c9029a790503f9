"""train_dae.py and genviz.dae (module, data, train): the real configs, overridden to tiny CPU runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, compose_cfg, make_images, tiny_cfg
from PIL import Image

from genviz.dae.data import DataRootError, ImageDataModule
from genviz.dae.train import train
from genviz.generator import decoder_from_checkpoint


def test_fast_dev_run(tmp_path):
    cfg = tiny_cfg(tmp_path, "trainer.fast_dev_run=true")
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"]) and np.isfinite(metrics["val/psnr"])
    assert (tmp_path / "run" / "samples").is_dir()  # the reconstruction grid ran


def test_resume_continues_global_step_and_checkpoint_loads(tmp_path):
    train(tiny_cfg(tmp_path, "trainer.max_steps=4"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4

    train(tiny_cfg(tmp_path, "trainer.max_steps=7", "ckpt_path=last"))
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == 7
    # the resumed run logged steps 4.. only (a fresh start would log from 0)
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "version_1" / "metrics.csv")))
    steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert steps and min(steps) >= 4

    hp = ckpt["hyper_parameters"]["decoder"]
    assert type(hp) is dict and hp["channels"] == [8, 8, 8] and hp["layout"] == "same"
    dec = decoder_from_checkpoint(str(last))
    assert torch.equal(dec.net[1].weight, ckpt["state_dict"]["decoder.net.1.weight"])
    img = dec(torch.randn(2, dec.code_dim))
    assert img.shape == (2, 3, 16, 16)

    grids = sorted((tmp_path / "run" / "samples").glob("recon_step*.png"))
    assert grids, "no reconstruction grid written"
    w, h = Image.open(grids[-1]).size
    assert h == 3 * 16 + 4 * 2 and w == 4 * 16 + 5 * 2  # rows noisy/clean/recon of the 4 val images


def test_loss_variants_and_config_errors(tmp_path):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from genviz.dae.module import fft_amplitude_l1

    cfg = tiny_cfg(tmp_path, "dae.loss=mse+fft")
    model = instantiate(cfg.dae)
    x = torch.rand(2, 3, 16, 16)
    losses = model.compute_loss(x.mean((-2, -1), keepdim=True).expand_as(x), x)  # flat = "blurred"
    assert losses["hf"] > 0 and losses["loss"] > losses["mse"]
    assert fft_amplitude_l1(x, x) == 0
    with pytest.raises(InstantiationException, match="outputs 16 px but image_size=32"):
        instantiate(tiny_cfg(tmp_path, "dae.image_size=32").dae)


def test_bad_data_root_raises_clear_error(tmp_path):
    dm = ImageDataModule(root=str(tmp_path / "missing"), image_size=16)
    with pytest.raises(DataRootError, match=r"missing.*data/README\.md"):
        dm.setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataRootError, match="no images found"):
        ImageDataModule(root=str(tmp_path / "empty"), image_size=16).setup()


def test_cli_bad_root_exits_nonzero_without_traceback():
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    r = subprocess.run(
        [sys.executable, "train_dae.py", "data.root=/nonexistent/genviz-data", "logger=none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode != 0
    assert "/nonexistent/genviz-data" in r.stderr and "data/README.md" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_unreadable_files_skipped_and_counted(tmp_path):
    folder = make_images(tmp_path / "imgs", n=6)
    (folder / "garbage.JPEG").write_bytes(b"this is not a jpeg" * 10)
    buf = folder / "ok.jpg"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buf, quality=90)
    (folder / "truncated.jpg").write_bytes(buf.read_bytes()[:300])
    dm = ImageDataModule(root=str(folder), image_size=16, batch_size=2, num_workers=0, val_size=2)
    with pytest.warns(UserWarning, match="2 unreadable image"):
        dm.setup()
    assert sorted(p.name for p in dm.unreadable) == ["garbage.JPEG", "truncated.jpg"]
    assert len(dm.train_set) + len(dm.val_set) == 7
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 16, 16) and 0 <= batch.min() and batch.max() <= 1


def test_split_is_deterministic_and_imagenet_subset(tmp_path):
    root = tmp_path / "imagenet" / "train"
    make_images(root / "n02085620", n=5)  # class 151, Chihuahua: a dog
    make_images(root / "n01440764", n=5)  # class 0, tench: not a dog
    kw = dict(root=str(tmp_path / "imagenet"), layout="imagenet", classes="151-268", image_size=16)
    kw["val_size"] = 2
    a, b = ImageDataModule(**kw), ImageDataModule(**kw)
    (ta, va), (tb, vb) = a.split(), b.split()
    assert ta == tb and va == vb and len(ta) + len(va) == 5
    assert all(p.parent.name == "n02085620" for p in ta + va)
    assert ImageDataModule(**{**kw, "seed": 1}).split()[1] != va or len(va) == 0


GROUPS = {
    "data": ["imagenet_dogs", "imagefolder", "folder", "val1k", "val1k_even"],
    "dae": ["paper", "cpu_small", "trunk_lite0"],
    "trainer": ["default", "cpu", "ddp"],
    "logger": ["csv", "tensorboard", "wandb", "none"],
}


def test_every_config_option_composes_and_resolves(tmp_path):
    from omegaconf import OmegaConf

    for group, options in GROUPS.items():
        for option in options:
            over = [f"{group}={option}", "data.root=/x", "name=n", f"paths.output_dir={tmp_path}"]
            c = OmegaConf.to_container(compose_cfg("train_dae", over), resolve=True)
            assert (
                c["data"]["image_size"]
                == c["dae"]["image_size"]
                == {"cpu_small": 80, "trunk_lite0": 128}.get(option, 224)
            )
            assert c["trainer"]["default_root_dir"] == str(tmp_path)
            assert bool(c.get("logger")) == (option != "none")
            assert "_target_" in c["data"] and "_target_" in c["dae"] and "_target_" in c["trainer"]


def test_last_checkpoint_follows_training_when_val_does_not_improve(tmp_path):
    # monitor the epoch with mode=min: after the first epoch nothing is "best" again, yet
    # last.ckpt must follow every epoch (stock ModelCheckpoint would leave it at step 3)
    over = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]
    cfg = tiny_cfg(tmp_path, "trainer.max_steps=9", *over)
    seen = []
    from genviz.dae.callbacks import Checkpoint

    class Spy(Checkpoint):
        def on_train_epoch_end(self, trainer, pl_module):
            super().on_train_epoch_end(trainer, pl_module)
            seen.append(torch.load(self.last_model_path, weights_only=False)["global_step"])

    cfg.callbacks.model_checkpoint._target_ = f"{__name__}.Spy"
    globals()["Spy"] = Spy
    train(cfg)
    assert seen == [3, 6, 9]
