"""Training at 128 px on photos that are mostly 64 px (data.native, dae.lowres_size): a small photo
and its reconstruction are compared at lowres_size, so the decoder is not taught the blur of the
upsampling; the few large photos are drawn as data.sharp_fraction of each epoch."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_cfg, make_images

from genviz import code_prior
from genviz.dae import codes
from genviz.dae.data import DataConfigError, ImageDataModule
from genviz.dae.discriminator import hinge_d_loss
from genviz.dae.module import DAE
from genviz.dae.train import train
from genviz.generator import from_pixels


def _two_sizes(tmp_path):
    """3 large photos of two classes (n01440764 twice, n01484850) and 9 small ones (n01443537)."""
    root = tmp_path / "photos"
    for name, n, size, wnids in (
        ("large", 3, 40, ["n01440764", "n01484850", "n01440764"]),
        ("small", 9, 8, ["n01443537"] * 9),
    ):
        for p, wnid in zip(sorted(make_images(tmp_path / name, n=n, size=size).iterdir()), wnids):
            (root / name).mkdir(parents=True, exist_ok=True)
            p.rename(root / name / f"{wnid}_{p.name}")
    return root


def test_items_say_whether_the_photo_is_sharp_and_the_sampler_draws_the_fraction(tmp_path):
    root = _two_sizes(tmp_path)
    dm = ImageDataModule(root=str(root), image_size=16, resize=18, batch_size=4, num_workers=0, val_size=2,
                         native=True, sharp_fraction=0.5, check="header")  # fmt: skip
    dm.setup()
    for ds in (dm.train_set, dm.val_set):
        for i, f in enumerate(ds.files):
            pixels, sharp = ds[i]
            assert pixels.shape == (3, 16, 16) and bool(sharp) == (f.parent.name == "large")
    sampler = dm.sharp_sampler(dm.train_set)
    n_large = sum(f.parent.name == "large" for f in dm.train_set.files)
    assert 0 < n_large < len(dm.train_set.files) / 2  # large photos are the minority ...
    many = [dm.train_set.files[i].parent.name for _ in range(200) for i in sampler]
    assert abs(many.count("large") / len(many) - 0.5) < 0.05  # ... and drawn as half of every epoch
    assert len(list(sampler)) == len(dm.train_set)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, list) and batch[1].dtype == torch.bool
    with pytest.raises(DataConfigError, match="sharp_fraction"):
        ImageDataModule(root=str(root), image_size=16, sharp_fraction=0.5)  # needs native=true
    plain = ImageDataModule(root=str(root), image_size=16, resize=18, num_workers=0, val_size=2)
    plain.setup()
    assert isinstance(plain.train_set[0], torch.Tensor)  # without native: tensors, as before


def test_a_small_photo_is_compared_at_lowres_size():
    model = DAE(
        decoder={"code_channels": 4, "code_size": 2, "channels": [8, 8, 8], "layout": "same"},
        encoder={"channels": [4, 4, 4], "hidden": 8}, image_size=16, lowres_size=8,
    )  # fmt: skip
    target = torch.zeros(2, 3, 16, 16)
    checker = torch.ones(16, 16)
    checker[::2] *= -1
    checker[:, ::2] *= -1  # a +-1 checkerboard: nothing of it survives at 8 px
    recon = target + checker
    sharp = torch.tensor([True, False])
    seen_r, seen_t = model.at_native(recon, sharp), model.at_native(target, sharp)
    assert torch.equal(seen_r[0], recon[0])  # a sharp photo is compared as it is
    assert seen_r[1].abs().max() < 1e-6  # the detail above 8 px is not asked of a small one
    assert model.compute_loss(seen_r[1:], seen_t[1:])["mse"] < 1e-10
    assert model.compute_loss(seen_r[:1], seen_t[:1])["mse"] == pytest.approx(1.0)
    shifted = target + 0.5  # what survives at 8 px still counts
    assert model.compute_loss(model.at_native(shifted, sharp)[1:], seen_t[1:])["mse"] == pytest.approx(0.25)


def test_with_reals_sharp_the_discriminator_sees_sharp_photos_as_real_and_every_reconstruction_whole():
    model = DAE(
        decoder={"code_channels": 4, "code_size": 2, "channels": [8, 8, 8], "layout": "same"},
        encoder={"channels": [4, 4, 4], "hidden": 8}, image_size=16, lowres_size=8,
        adversarial={"weight": 0.05, "channels": 4, "reals": "sharp"},
    )  # fmt: skip
    pixels, sharp = torch.rand(3, 3, 16, 16), torch.tensor([True, False, False])
    _, recon, losses, (fake, real), weight = model._step((pixels, sharp))
    assert torch.equal(fake, recon) and torch.equal(real, from_pixels(pixels))  # full size, not at 8 px
    assert weight.tolist() == [1.0, 0.0, 0.0]
    # the reconstruction loss still takes a small photo at lowres_size
    blurred = model.compute_loss(model.at_native(recon, sharp), model.at_native(real, sharp))["mse"]
    assert torch.allclose(losses["mse"], blurred)
    # a small photo scored as fake costs the discriminator nothing on the real side
    fakes = torch.full((3, 1, 2, 2), -1.0)
    assert hinge_d_loss(torch.tensor([1.0, -5.0, -5.0]).view(3, 1, 1, 1), fakes, weight) == 0
    assert hinge_d_loss(torch.tensor([0.0, 1.0, 1.0]).view(3, 1, 1, 1), fakes, weight) == 1
    assert hinge_d_loss(torch.zeros(3, 1, 1, 1), fakes, torch.zeros(3)) == 0  # no sharp photo: no real term
    with pytest.raises(ValueError, match="'all' or 'sharp'"):
        DAE(image_size=16, adversarial={"weight": 0.05, "reals": "some"},
            decoder={"code_channels": 4, "code_size": 2, "channels": [8, 8, 8], "layout": "same"},
            encoder={"channels": [4, 4, 4], "hidden": 8})  # fmt: skip


@pytest.mark.parametrize("recipe", ["trunk_lite0_even43k", "trunk_lite0_even43k_sharp"])
def test_the_even43k_recipe_trains_and_resumes_from_last(tmp_path, recipe):
    root = _two_sizes(tmp_path)

    def cfg(*extra):
        return compose_cfg(
            "train_dae",
            [
                f"dae={recipe}",
                "dae.image_size=32", "dae.decoder.code_size=2", "dae.decoder.channels=[8,8,8,8]",
                "dae.decoder.code_channels=4", "dae.encoder.hidden=8", "dae.adversarial.channels=4",
                "dae.lowres_size=16", "dae.warmup_steps=0", "dae.perceptual.layers=[blocks1]",
                "data=folder", f"data.root={root}", "data.native=true", "data.sharp_fraction=0.5",
                "data.resize=36", "data.crop_scale=[0.5,1.0]", "data.batch_size=4", "data.val_size=2",
                "data.num_workers=0", "trainer=cpu", "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0",
                "trainer.log_every_n_steps=1", "logger=none", "name=e43", f"paths.output_dir={tmp_path / 'run'}",
                *extra,
            ],
        )  # fmt: skip

    train(cfg("trainer.max_steps=2"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["hyper_parameters"]["lowres_size"] == 16
    metrics = train(cfg("trainer.max_steps=4", "ckpt_path=last"))
    assert torch.load(last, weights_only=True)["global_step"] == 4
    assert "train/g_adv" in metrics and torch.isfinite(torch.tensor(metrics["train/loss"]))

    # its code prior, the bank taken from the photos of at least 32 px, each code with its class
    out = tmp_path / "e43.code_prior.pt"
    args = [str(last), "--data", "folder", "--data-override", f"data.root={root}", "--data-override",
            "data.val_size=2", "--data-override", "data.num_workers=0", "--steps", "100", "--hidden", "8",
            "--bank-photos", "sharp", "--out", str(out)]  # fmt: skip
    assert codes.main(args) == 0
    prior = code_prior.load(out)
    large = {p.name.split("_")[0] for p in (root / "large").iterdir()}
    assert 1 <= len(prior.bank) <= 3 and set(prior.bank_labels) <= large  # no code of a small photo


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["dae=trunk_lite0_even43k"], "dae.lowres_size=64"),
        (["dae=trunk_lite0_even43k_sharp", "dae.lowres_size=null"], "dae.adversarial.reals=sharp"),
    ],
)
def test_lowres_size_or_sharp_reals_without_native_data_is_one_line_naming_the_fix(
    tmp_path, overrides, named
):
    # without data.native the photos carry no sharp flag: these options would silently do nothing
    root = _two_sizes(tmp_path)
    cfg = compose_cfg(
        "train_dae",
        [*overrides, "data=folder", f"data.root={root}", "data.native=false", "trainer=cpu",
         "logger=none", f"paths.output_dir={tmp_path / 'run'}"],
    )  # fmt: skip
    with pytest.raises(DataConfigError, match="data.native=true") as e:
        train(cfg)
    assert named in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before anything was built
