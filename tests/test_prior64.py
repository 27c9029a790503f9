"""The generator prior trained on every even-class photo: its data config reads only even-index
classes from several folders, and its training recipe (dae=prior64) trains and resumes from
last.ckpt.  Real lite0 as trunk, tiny decoder and images, a few steps."""

from __future__ import annotations

import pytest
import torch
from conftest import SHARED, compose_cfg, make_images
from hydra.utils import instantiate

from genviz.dae.data import DataRootError, ImageDataModule, imagenet_wnids, list_images
from genviz.dae.discriminator import PatchDiscriminator
from genviz.dae.train import train


def test_a_data_module_reads_several_folders_as_one(tmp_path):
    a, b = make_images(tmp_path / "a", n=5), make_images(tmp_path / "b", n=3)
    dm = ImageDataModule(root=[str(a), str(b)], image_size=16, batch_size=2, num_workers=0, val_size=2)
    dm.setup()
    files = dm.train_set.files + dm.val_set.files
    assert len(files) == 8 and {f.parent for f in files} == {a, b}
    with pytest.raises(DataRootError):
        ImageDataModule(root=[], image_size=16)


def test_even43k_reads_only_even_index_classes():
    cfg = compose_cfg("train_dae", ["data=even43k", "dae=prior64"])
    roots = list(cfg.data.root)
    if not all(__import__("pathlib").Path(r).is_dir() for r in roots):
        pytest.skip(f"shared photos not found under {SHARED}")
    even = set(imagenet_wnids("even"))
    files = [f for r in roots for f in list_images(r, "folder", cfg.data.classes)]
    assert len(files) > 43_000
    wnids = {
        f.parent.name if f.parent.name.startswith("n") and "_" not in f.parent.name else f.name.split("_")[0]
        for f in files
    }
    assert wnids <= even  # not one photo of an odd-index class


def test_discriminator_depth_sets_its_view():
    x = torch.zeros(2, 3, 64, 64)
    assert PatchDiscriminator(4, depth=3)(x).shape == (2, 1, 8, 8)
    assert PatchDiscriminator(4, depth=4)(x).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="depth"):
        PatchDiscriminator(4, depth=0)


def test_prior64_trains_and_resumes_from_last(tmp_path):
    images = make_images(tmp_path / "images", n=6, size=72)

    def cfg(*extra):
        return compose_cfg(
            "train_dae",
            [
                "dae=prior64",
                "dae.decoder.channels=[8,8,8,8]",
                "dae.decoder.code_channels=4",
                "dae.encoder.hidden=8",
                "dae.adversarial.channels=4",
                "dae.warmup_steps=0",
                "data=folder",
                f"data.root={images}",
                "data.batch_size=2",
                "data.val_size=2",
                "data.num_workers=0",
                "trainer=cpu",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "trainer.num_sanity_val_steps=0",
                "trainer.log_every_n_steps=1",
                "logger=none",
                "name=p64",
                f"paths.output_dir={tmp_path / 'run'}",
                *extra,
            ],
        )

    model = instantiate(cfg().dae)
    assert model.decoder.output_size() == 64 and model.discriminator is not None
    train(cfg("trainer.max_steps=2"))  # one batch: a decoder step and a discriminator step
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    metrics = train(cfg("trainer.max_steps=4", "ckpt_path=last"))
    ck = torch.load(last, weights_only=True)
    assert ck["global_step"] == 4 and all(s["state"] for s in ck["optimizer_states"])
    assert "train/g_adv" in metrics and torch.isfinite(torch.tensor(metrics["train/loss"]))
